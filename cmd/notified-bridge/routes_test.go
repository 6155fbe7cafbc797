package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestRoutesWhere: routes add --where stores a filter the server checked,
// routes list shows it, and a filter that is not a jsonpath predicate is a
// one-line error quoting the server, with an example.
func TestRoutesWhere(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})

	out := mustRun(t, db, "routes", "add", "--where", "$.total > 1000", "order_placed", "big_order_alert")
	require.Equal(t, "route added: order_placed -> big_order_alert (queue default, priority 1, max attempts 25, where $.total > 1000)\n", out)
	mustRun(t, db, "routes", "add", "order_placed", "ship_order")

	table := strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n")
	require.Len(t, table, 3, table)
	require.Equal(t, []string{"order_placed", "big_order_alert", "default", "1", "25", "$.total", ">", "1000", "-"}, strings.Fields(table[1]))
	require.Equal(t, []string{"order_placed", "ship_order", "default", "1", "25", "-", "-"}, strings.Fields(table[2]))

	var rs []map[string]any
	out = mustRun(t, db, "routes", "list", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &rs), out)
	require.Len(t, rs, 2)
	require.Equal(t, "$.total > 1000", rs[0]["where"])
	require.Equal(t, "", rs[1]["where"])

	for _, tc := range []struct {
		where string
		want  string
	}{
		{"$.total >", `route e -> h: invalid filter "$.total >": syntax error at end of jsonpath input: write a jsonpath predicate, e.g. '$.total > 1000'`},
		{"$.total", `route e -> h: invalid filter "$.total" is not a predicate (single boolean result is expected): compare, e.g. '$.total > 1000'`},
		{"$.total > $min", `route e -> h: invalid filter "$.total > $min": could not find jsonpath variable "min": write a jsonpath predicate, e.g. '$.total > 1000'`},
		{"  ", `route e -> h: --where is empty: give a jsonpath predicate, e.g. --where '$.total > 1000', or leave --where out for every event`},
	} {
		stdout, stderr, code := run(t, db, "routes", "add", "--where", tc.where, "e", "h")
		requireUserError(t, stderr, code)
		require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr, "--where %q", tc.where)
		require.Empty(t, stdout)
	}
	// --where after the arguments is refused like any option there.
	_, stderr, code := run(t, db, "routes", "add", "e", "h", "--where", "$.a == 1")
	requireUserError(t, stderr, code, `routes add: "--where" after the arguments: options go before them`)
	require.Len(t, strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n"), 3, "no failure wrote a route")
}
