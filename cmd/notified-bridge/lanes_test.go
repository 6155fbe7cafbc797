package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestRoutesOrderedBy: routes add --ordered-by and --on-failure store an
// ordered route, routes list shows it and says what a missing key means;
// a key that is not one is a one-line error quoting the server.
func TestRoutesOrderedBy(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})

	out := mustRun(t, db, "routes", "add", "--ordered-by", "$.order_id", "--on-failure", "stop", "order_event", "fulfil")
	require.Equal(t, "route added: order_event -> fulfil (queue default, priority 1, max attempts 25, ordered by $.order_id (stops at a failure))\n"+
		"ordering applies to the events dispatched from now on; an event whose row has no value at the key runs unordered\n", out)
	mustRun(t, db, "routes", "add", "order_event", "mail")

	table := strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n")
	require.Len(t, table, 4, table)
	require.Equal(t, []string{"order_event", "fulfil", "default", "1", "25", "-", "$.order_id", "(stops", "at", "a", "failure)"}, strings.Fields(table[1]))
	require.Equal(t, []string{"order_event", "mail", "default", "1", "25", "-", "-"}, strings.Fields(table[2]))
	require.Contains(t, table[3], "an event whose row has no value (or null) at the key runs unordered")

	var rs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "routes", "list", "--json")), &rs))
	require.Equal(t, "$.order_id", rs[0]["ordered_by"])
	require.Equal(t, "stop", rs[0]["on_failure"])
	require.Equal(t, "", rs[1]["ordered_by"])

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ordered-by", "$.total > 1"}, `route e -> h: invalid ordering key "$.total > 1" is a predicate, not a key: name the field that identifies the lane, e.g. '$.order_id'`},
		{[]string{"--ordered-by", "$.a["}, `route e -> h: invalid ordering key "$.a[": syntax error at end of jsonpath input: write a jsonpath that selects the key, e.g. '$.order_id'`},
		{[]string{"--ordered-by", " "}, `route e -> h: --ordered-by is empty: give a jsonpath that selects the key, e.g. --ordered-by '$.order_id', or leave --ordered-by out`},
		{[]string{"--on-failure", "stop"}, `route e -> h: --on-failure stop applies to ordered routes: add --ordered-by, e.g. --ordered-by '$.order_id'`},
		{[]string{"--ordered-by", "$.a", "--on-failure", "later"}, `route e -> h: on failure "later" is not "continue" or "stop"`},
	} {
		stdout, stderr, code := run(t, db, append(append([]string{"routes", "add"}, tc.args...), "e", "h")...)
		requireUserError(t, stderr, code)
		require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr, "%q", tc.args)
		require.Empty(t, stdout)
	}
}

// TestLanesStopAndResume: a lane whose job is discarded stops (on-failure
// stop); lanes list shows it, lanes resume needs a reason and then releases
// the next job; resuming again says the lane is not stopped.
func TestLanesStopAndResume(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "--ordered-by", "$.payload.order_id", "--on-failure", "stop", "order_event", "fulfil")
	require.Equal(t, "no lanes with jobs\n", mustRun(t, db, "lanes", "list", "--channel", db.Channel))
	first := insertEvent(t, db, "order_event", `{"order_id": "A-17"}`)
	second := insertEvent(t, db, "order_event", `{"order_id": "A-17"}`)
	startBridge(t, db)
	jobOf := func(event int64) (id int64, state string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := db.Pool.QueryRow(context.Background(), "SELECT id, state::text FROM "+tbl(db, "river_job")+
				" WHERE metadata->'notified'->>'event_id' = $1", strconv.FormatInt(event, 10)).Scan(&id, &state)
			if err == nil || time.Now().After(deadline) {
				require.NoError(t, err)
				return id, state
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	head, state := jobOf(first)
	require.Equal(t, "available", state)
	next, state := jobOf(second)
	require.Equal(t, "pending", state)

	out := mustRun(t, db, "lanes", "list", "--channel", db.Channel)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Equal(t, []string{"KIND", "KEY", "HEAD", "JOB", "STATE", "WAITING", "SINCE"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"fulfil", `"A-17"`, strconv.FormatInt(head, 10), "available", "1"}, strings.Fields(lines[1])[:5])

	// River discards the head, as it does after its last attempt.
	_, err := db.Pool.Exec(context.Background(), "UPDATE "+tbl(db, "river_job")+
		" SET state = 'discarded', finalized_at = now(), attempt = 1 WHERE id = $1", head)
	require.NoError(t, err)
	out = mustRun(t, db, "lanes", "list", "--channel", db.Channel, "--stopped")
	require.Contains(t, out, "STOPPED at this failed job")
	var ls []map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "lanes", "list", "--channel", db.Channel, "--json")), &ls))
	require.Len(t, ls, 1)
	require.EqualValues(t, head, ls[0]["stopped_job_id"])
	_, state = jobOf(second)
	require.Equal(t, "pending", state)

	// Status counts the lanes and points at the stopped one.
	status := mustRun(t, db, "status", "--channel", db.Channel)
	require.Contains(t, status, "\nlanes of ordered routes (pending jobs wait their turn in them)\n")
	require.Regexp(t, "\nfulfil +1 +1: see `notified-bridge lanes list --stopped` +1\n", status)

	// History says where each job stands in its lane.
	hist := mustRun(t, db, "history", "--channel", db.Channel, "--table", db.Events(), strconv.FormatInt(second, 10))
	require.Regexp(t, `routed to +fulfil \(ordered by \$\.payload\.order_id\)`, hist)
	require.Contains(t, hist, `lane "A-17" of fulfil: waits; the lane is stopped at failed job `+strconv.FormatInt(head, 10)+
		` (resume it: `+"`notified-bridge lanes resume --reason ... fulfil '\"A-17\"'`)")
	hist = mustRun(t, db, "history", "--channel", db.Channel, "--table", db.Events(), strconv.FormatInt(first, 10))
	require.Contains(t, hist, `lane "A-17" of fulfil; the lane stopped at this discarded job at `)

	_, stderr, code := run(t, db, "lanes", "resume", "--channel", db.Channel, "fulfil", `"A-17"`)
	requireUserError(t, stderr, code, "lanes resume needs a reason")
	_, stderr, code = run(t, db, "lanes", "resume", "--channel", db.Channel, "--reason", "x", "fulfil", "A-17")
	requireUserError(t, stderr, code, `resume lane A-17 of fulfil on channel "`+db.Channel+`": no such lane: list the stopped lanes with`)

	out = mustRun(t, db, "lanes", "resume", "--channel", db.Channel, "--reason", "refunded by hand", "fulfil", `"A-17"`)
	require.Equal(t, `lane "A-17" of fulfil resumed past failed job `+strconv.FormatInt(head, 10)+"\n", out)
	_, state = jobOf(second)
	require.Equal(t, "available", state)
	_ = next
	hist = mustRun(t, db, "history", "--channel", db.Channel, "--table", db.Events(), "--json", strconv.FormatInt(first, 10))
	require.Contains(t, hist, `"action": "resumed"`)
	require.Contains(t, hist, `"reason": "refunded by hand"`)
	_, stderr, code = run(t, db, "lanes", "resume", "--channel", db.Channel, "--reason", "x", "fulfil", `"A-17"`)
	requireUserError(t, stderr, code, "lane is not stopped")
}

// TestSetupRouteOptions: setup --route takes a route's options after
// semicolons, and refuses unknown ones.
func TestSetupRouteOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec, want string
	}{
		{"e=k;colour=red", `--route "e=k;colour=red": unknown option "colour": use queue, priority, max-attempts, where, ordered-by, on-failure, webhook or secret-env`},
		{"e=k;ordered-by", `--route "e=k;ordered-by": option "ordered-by" is not NAME=VALUE, e.g. e=k;ordered-by=$.order_id`},
		{"e=k;priority=high", `--route "e=k;priority=high": priority "high" is not a positive number`},
		{"e=k;on-failure=stop", `route e -> k: on failure "stop" applies to ordered routes only: give the ordering key too, e.g. '$.order_id'`},
	} {
		r, err := parseRouteSpec(tc.spec)
		if err == nil {
			err = r.Validate()
		}
		require.EqualError(t, err, tc.want, tc.spec)
	}
	r, err := parseRouteSpec(" order_event=fulfil; queue=orders ;ordered-by=$.order_id;on-failure=stop;where=$.total >= 10 && $.x == 1;priority=2;max-attempts=5")
	require.NoError(t, err)
	require.NoError(t, r.Validate())
	require.Equal(t, "order_event", r.Event)
	require.Equal(t, "fulfil", r.Kind)
	require.Equal(t, "orders", r.Queue)
	require.Equal(t, "$.order_id", r.OrderedBy)
	require.Equal(t, "stop", r.OnFailure)
	require.Equal(t, "$.total >= 10 && $.x == 1", r.Where)
	require.Equal(t, 2, r.Priority)
	require.Equal(t, 5, r.MaxAttempts)

	r, err = parseRouteSpec("order_placed=notified_webhook;webhook=http://receiver:8000/hooks/orders;secret-env=NOTIFIED_WEBHOOK_SECRET_ORDERS")
	require.NoError(t, err)
	require.NoError(t, r.Validate())
	require.Equal(t, "http://receiver:8000/hooks/orders", r.Webhook)
	require.Equal(t, "webhook", r.Queue)
	require.Equal(t, "NOTIFIED_WEBHOOK_SECRET_ORDERS", r.SecretEnv)
}
