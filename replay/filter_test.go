package replay_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/replay"
	"github.com/notified/notified/routes"
)

// ignoreFilters reads whether the replay's record says it ignored filters.
func (tb *testBundle) ignoreFilters(t *testing.T, id int64) bool {
	t.Helper()
	var ignored bool
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		`SELECT ignore_filters FROM `+tb.DB.Schema+`.notified_replay WHERE id = $1`, id).Scan(&ignored))
	return ignored
}

// TestReplayAppliesFilters: a replay applies today's route filters to the
// rows as they are now, unless told to ignore them; its record says which.
// Dead letters retried by job are not filtered again.
func TestReplayAppliesFilters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	store := routes.NewStore(tb.DB.Pool, tb.DB.Schema)
	require.NoError(t, store.Add(ctx, routes.Route{Event: "order", Kind: "ship"}))
	require.NoError(t, store.Add(ctx, routes.Route{Event: "order", Kind: "big", Where: "$.payload.total > 1000"}))
	require.NoError(t, store.Add(ctx, routes.Route{Event: "refund", Kind: "audit", Where: "strict $.payload.amount > 100"}))
	var big, small, refund, bad string
	for _, e := range []struct {
		dst           *string
		name, payload string
	}{{&big, "order", `{"total": 5000}`}, {&small, "order", `{"total": 5}`}, {&refund, "refund", `{"amount": 5}`}, {&bad, "refund", `{"amount": "x"}`}} {
		require.NoError(t, tb.DB.Pool.QueryRow(ctx, "INSERT INTO "+tb.DB.Events()+" (name, payload) VALUES ($1, $2) RETURNING id::text",
			e.name, e.payload).Scan(e.dst))
	}
	tb.dispatchAndStop(t, 4)
	require.Equal(t, 3, tb.count(t, "river_job"), "big and ship for the big order, ship for the small one")

	// Today's filters, on the rows as they are now.
	sel := replay.Selector{IDs: []string{big, small, refund, bad}}
	opts := replay.Options{Reason: "filters", RequestedBy: "test"}
	res := tb.replay(t, sel, opts)
	require.True(t, res.FiltersApplied)
	require.Equal(t, 1, res.FilteredJobs, "big skipped for the small order")
	require.Equal(t, map[replay.SkipCause]int{replay.SkipFiltered: 2}, res.SkippedByCause)
	require.Contains(t, res.Skipped[0].Reason, "the filters of its routes skipped the row (audit)")
	tb.requireReplayed(t, res, map[string][]string{big: {"big", "ship"}, small: {"ship"}})
	require.Equal(t, []string{"big"}, res.Planned[1].Filtered)
	require.False(t, tb.ignoreFilters(t, res.ReplayID))

	// A dry run evaluates them the same way.
	opts.DryRun = true
	require.Equal(t, []string{big, small}, tb.dryRun(t, sel, opts))
	opts.DryRun = false

	// Ignoring them: every route gets its job.
	opts.IgnoreFilters = true
	res = tb.replay(t, sel, opts)
	require.False(t, res.FiltersApplied)
	require.Zero(t, res.FilteredJobs)
	tb.requireReplayed(t, res, map[string][]string{big: {"big", "ship"}, small: {"big", "ship"}, refund: {"audit"}, bad: {"audit"}})
	require.True(t, tb.ignoreFilters(t, res.ReplayID))

	// Only filtered events selected: nothing to replay, and it says why.
	_, nothing := tb.replayNothing(t, replay.Selector{IDs: []string{refund}}, replay.Options{Reason: "x"})
	require.Equal(t, map[replay.SkipCause]int{replay.SkipFiltered: 1}, nothing.Skipped)
	require.Contains(t, nothing.Error(), "filtered 1")

	// A job named by id (a dead letter retried) is made again whatever
	// the filter says of the row today.
	testSelJob := tb.jobID(t, big, "big")
	_, err := tb.DB.Pool.Exec(ctx, "UPDATE "+tb.DB.Events()+" SET payload = '{\"total\": 1}' WHERE id = $1::bigint", big)
	require.NoError(t, err)
	res = tb.replay(t, replay.Selector{Jobs: []int64{testSelJob}}, replay.Options{Reason: "retry", RequestedBy: "test"})
	tb.requireReplayed(t, res, map[string][]string{big: {"big"}})
	require.True(t, tb.ignoreFilters(t, res.ReplayID))
}
