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

// planCost is what EXPLAIN (ANALYZE, BUFFERS) says a query read.
type planCost struct {
	buffers int64           // shared blocks hit or read, whole plan
	nodes   map[string]bool // "Node Type on Relation" of every node
}

func explain(t *testing.T, tx pgx.Tx, sql string, args ...any) planCost {
	t.Helper()
	var raw []byte
	require.NoError(t, tx.QueryRow(context.Background(), "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&raw))
	var doc []struct {
		Plan map[string]any `json:"Plan"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	c := planCost{nodes: map[string]bool{}}
	c.buffers = int64(doc[0].Plan["Shared Hit Blocks"].(float64) + doc[0].Plan["Shared Read Blocks"].(float64))
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		name, _ := n["Node Type"].(string)
		if rel, ok := n["Relation Name"].(string); ok {
			name += " on " + rel
		}
		c.nodes[name] = true
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				walk(k.(map[string]any))
			}
		}
	}
	walk(doc[0].Plan)
	return c
}

// catchUpCost builds a schema whose events table already holds dispatched
// events (and their dispatch records), adds a backlog, and returns what the
// claim and the fetch of one batch read.
func catchUpCost(t *testing.T, dispatched, backlog int) (claim, fetch planCost) {
	t.Helper()
	tb := setup(t)
	ctx := context.Background()
	// History: events dispatched long ago. Loaded in bulk, without the
	// trigger, as a table with years of events would be.
	testdb.Exec(t, tb.db.Pool, "ALTER TABLE "+tb.db.Events()+" DISABLE TRIGGER USER")
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.db.Events()+" (name, payload) SELECT 'e', jsonb_build_object('n', g) FROM generate_series(1, $1::int) g", dispatched)
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_dispatch (channel, event_id, event_name, outcome, notified_at, dispatched_at)
		SELECT $1, id::text, name, 'unrouted', now(), now() FROM `+tb.db.Events(), tb.db.Channel)
	testdb.Exec(t, tb.db.Pool, "ALTER TABLE "+tb.db.Events()+" ENABLE TRIGGER USER")
	tb.insertEvents(t, make([]string, backlog)...) // the backlog, through the trigger
	for _, table := range []string{tb.db.Events(), tb.db.Schema + ".notified_dispatch", tb.db.Schema + ".notified_outbox"} {
		testdb.Exec(t, tb.db.Pool, "ANALYZE "+table)
	}
	b, err := bridge.New(ctx, tb.db.Pool, tb.cfg)
	require.NoError(t, err)

	tx, err := tb.db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// The planner settings the dispatch transaction uses for its claim.
	_, err = tx.Exec(ctx, "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)")
	require.NoError(t, err)
	claim = explain(t, tx, bridge.ClaimSQL(b), tb.db.Channel, 1000)
	_, err = tx.Exec(ctx, "SELECT set_config('enable_sort', 'on', true), set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true)")
	require.NoError(t, err)
	rows, err := tx.Query(ctx, "SELECT event_id::bigint FROM "+tb.db.Schema+".notified_outbox ORDER BY seq LIMIT 1000")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	strIDs := make([]string, len(ids))
	for i, id := range ids {
		strIDs[i] = fmtInt(id)
	}
	fetch = explain(t, tx, bridge.FetchSQL(b), strIDs, int64(bridge.DefaultMaxBatchBytes), int64(bridge.DefaultLargeRowBytes))
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

	for _, c := range []planCost{smallClaim, bigClaim} {
		require.True(t, c.nodes["Index Scan on notified_outbox"], "the claim walks the outbox's primary key: %v", c.nodes)
		require.False(t, c.nodes["Seq Scan on notified_outbox"], "%v", c.nodes)
	}
	require.True(t, bigFetch.nodes["Index Scan on events"], "the fetch looks ids up by primary key: %v", bigFetch.nodes)
	require.False(t, bigFetch.nodes["Seq Scan on events"], "%v", bigFetch.nodes)
	// The claim reads the outbox alone: the events already dispatched do not
	// count. The fetch reads, per id, one descent of the events table's
	// primary key and one heap page: a few pages per id, growing with the
	// B-tree's height (3 levels at 5 million rows), not with the table.
	require.LessOrEqual(t, bigClaim.buffers, 2*smallClaim.buffers+50, "claim: %d buffers with 200k events vs %d with none", bigClaim.buffers, smallClaim.buffers)
	require.LessOrEqual(t, bigFetch.buffers, int64(1000*5), "fetch of 1000 ids read %d buffers", bigFetch.buffers)
	t.Logf("claim of 1000: %d buffers (no history) vs %d (200k events); fetch of 1000: %d vs %d",
		smallClaim.buffers, bigClaim.buffers, smallFetch.buffers, bigFetch.buffers)
}
