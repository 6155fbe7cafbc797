package bridge_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
)

// catchUpCost builds a schema whose events table already holds dispatched
// events (and their dispatch records), adds a backlog, and returns what the
// claim and the fetch of one batch read.
func catchUpCost(t *testing.T, dispatched, backlog int) (claim, fetch testdb.Plan) {
	t.Helper()
	tb := setup(t)
	ctx := context.Background()
	// History: events dispatched long ago. Loaded in bulk, without the
	// trigger, as a table with years of events would be.
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Events()+" DISABLE TRIGGER USER")
	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+tb.DB.Events()+" (name, payload) SELECT 'e', jsonb_build_object('n', g) FROM generate_series(1, $1::int) g", dispatched)
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_dispatch (channel, event_id, event_name, outcome, notified_at, dispatched_at)
		SELECT $1, id::text, name, 'unrouted', now(), now() FROM `+tb.DB.Events(), tb.DB.Channel)
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Events()+" ENABLE TRIGGER USER")
	tb.InsertEvents(t, make([]string, backlog)...) // the backlog, through the trigger
	for _, table := range []string{tb.DB.Events(), tb.DB.Schema + ".notified_dispatch", tb.DB.Schema + ".notified_outbox"} {
		testdb.Exec(t, tb.DB.Pool, "ANALYZE "+table)
	}
	b, err := bridge.New(ctx, tb.DB.Pool, tb.Config)
	require.NoError(t, err)

	tx, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// The planner settings the dispatch transaction uses for its claim.
	_, err = tx.Exec(ctx, "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)")
	require.NoError(t, err)
	claim = testdb.Explain(t, tx, bridge.ClaimSQL(b), tb.DB.Channel, 1000)
	_, err = tx.Exec(ctx, "SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true)")
	require.NoError(t, err)
	rows, err := tx.Query(ctx, "SELECT event_id::bigint FROM "+tb.DB.Schema+".notified_outbox ORDER BY seq LIMIT 1000")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	strIDs := make([]string, len(ids))
	for i, id := range ids {
		strIDs[i] = fmtInt(id)
	}
	fetch = testdb.Explain(t, tx, bridge.FetchSQL(b), strIDs, int64(bridge.DefaultMaxBatchBytes), int64(bridge.DefaultLargeRowBytes), []string{}, []string{}, []string{}, []string{})
	return claim, fetch
}

func fmtInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestCatchUpCostIsIndependentOfTableSize: a batch of the catch-up reads in
// proportion to the batch, not to the events already in the table: the claim
// walks the outbox's primary key, and the fetch looks ids up by the events
// table's. docs/scale.md shows the same plans with 5 million events.
func TestCatchUpCostIsIndependentOfTableSize(t *testing.T) {
	t.Parallel()
	const backlog = 3000
	smallClaim, smallFetch := catchUpCost(t, 0, backlog)
	bigClaim, bigFetch := catchUpCost(t, 200_000, backlog)

	for _, c := range []testdb.Plan{smallClaim, bigClaim} {
		require.True(t, c.Nodes["Index Scan on notified_outbox"], "the claim walks the outbox's primary key: %v", c.Nodes)
		require.False(t, c.Nodes["Seq Scan on notified_outbox"], "%v", c.Nodes)
	}
	require.True(t, bigFetch.Nodes["Index Scan on events"], "the fetch looks ids up by primary key: %v", bigFetch.Nodes)
	require.False(t, bigFetch.Nodes["Seq Scan on events"], "%v", bigFetch.Nodes)
	// The claim reads the outbox alone: the events already dispatched do not
	// count. The fetch reads, per id, one descent of the events table's
	// primary key and one heap page: a few pages per id, growing with the
	// B-tree's height (3 levels at 5 million rows), not with the table.
	require.LessOrEqual(t, bigClaim.Buffers, 2*smallClaim.Buffers+50, "claim: %d buffers with 200k events vs %d with none", bigClaim.Buffers, smallClaim.Buffers)
	require.LessOrEqual(t, bigFetch.Buffers, int64(1000*5), "fetch of 1000 ids read %d buffers", bigFetch.Buffers)
	t.Logf("claim of 1000: %d buffers (no history) vs %d (200k events); fetch of 1000: %d vs %d",
		smallClaim.Buffers, bigClaim.Buffers, smallFetch.Buffers, bigFetch.Buffers)
}
