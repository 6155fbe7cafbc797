package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestHistoryShowsFilterSkips: history (text and JSON) says per handler
// whether the route's filter skipped the event, and replay applies today's
// filters unless --ignore-filters.
func TestHistoryShowsFilterSkips(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "--where", "$.payload.total > 1000", "order_placed", "big_order_alert")
	mustRun(t, db, "routes", "add", "--where", "strict $.payload.country == \"FR\"", "order_placed", "french_desk")
	mustRun(t, db, "routes", "add", "order_placed", "ship_order")
	mustRun(t, db, "routes", "add", "--where", "$.payload.amount > 100", "refund", "audit")
	small := strconv.FormatInt(insertEvent(t, db, "order_placed", `{"total": 5}`), 10)
	refund := strconv.FormatInt(insertEvent(t, db, "refund", `{"amount": 5}`), 10)
	b := startBridge(t, db)
	waitDispatched(t, db, 2, 15*time.Second)
	require.Equal(t, exitInterrupt, interrupt(t, b))
	hist := func(id string, args ...string) string {
		return mustRun(t, db, append([]string{"history", "--channel", db.Channel, "--table", db.Events()}, append(args, id)...)...)
	}

	out := hist(small)
	require.Equal(t, []string{"routed", "to", "big_order_alert", "(skipped", "by", "filter),", "french_desk", "(skipped:", "filter", "error),", "ship_order"},
		line(t, out, "routed", "to"))
	var ev struct {
		Outcome string `json:"outcome"`
		Routes  []struct {
			Kind    string `json:"kind"`
			Where   string `json:"where"`
			Skipped string `json:"skipped"`
		} `json:"routes"`
		Jobs []struct {
			Handler string `json:"handler"`
		} `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal([]byte(hist(small, "--json")), &ev))
	require.Equal(t, "dispatched", ev.Outcome)
	require.Len(t, ev.Routes, 3)
	require.Equal(t, "big_order_alert", ev.Routes[0].Kind)
	require.Equal(t, "$.payload.total > 1000", ev.Routes[0].Where)
	require.Equal(t, "filter", ev.Routes[0].Skipped)
	require.Equal(t, "filter_error", ev.Routes[1].Skipped)
	require.Equal(t, "", ev.Routes[2].Skipped)
	require.Len(t, ev.Jobs, 1)
	require.Equal(t, "ship_order", ev.Jobs[0].Handler)

	// Every route skipped the refund: dispatched, no job, and why.
	out = hist(refund)
	require.Equal(t, []string{"outcome", "dispatched"}, line(t, out, "outcome"))
	require.Equal(t, "reason no job: the filter of every route skipped the event", strings.Join(line(t, out, "reason"), " "))
	require.Contains(t, out, "no jobs: the filter of every route skipped the event; `notified-bridge replay --id "+refund+" --ignore-filters --reason ...` makes them\n")

	// replay applies today's filters ...
	replayArgs := []string{"replay", "--channel", db.Channel, "--table", db.Events()}
	stdout, stderr, code := run(t, db, append(replayArgs, "--id", refund, "--reason", "again")...)
	requireUserError(t, stderr, code, "nothing to replay: the selected event was skipped (1 skipped by the routes' filters (--ignore-filters makes their jobs)); nothing was recorded")
	require.Contains(t, stdout, "the filters of its routes skipped the row (audit)")
	out = mustRun(t, db, append(replayArgs, "--id", small, "--reason", "again")...)
	require.Contains(t, out, "route filters skipped 2 jobs of the events enqueued for (--ignore-filters makes them)\n")
	require.Equal(t, []string{small, "order_placed", "ship_order,", "big_order_alert", "(skipped", "by", "filter),", "french_desk", "(skipped", "by", "filter)"},
		line(t, out, small, "order_placed"))
	// ... unless --ignore-filters.
	out = mustRun(t, db, append(replayArgs, "--ignore-filters", "--id", refund, "--reason", "audit it anyway")...)
	require.Contains(t, out, "route filters ignored (--ignore-filters): every route got its job\n")
	require.Equal(t, []string{refund, "refund", "audit"}, line(t, out, refund, "refund"))
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_replay")+" WHERE ignore_filters"))
}
