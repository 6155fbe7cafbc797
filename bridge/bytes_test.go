package bridge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestBatchesAreBoundedByBytes: rows of every size in one backlog are all
// dispatched exactly once, a batch reads at most MaxBatchBytes of row data,
// and rows over LargeRowBytes get jobs whose args and metadata are exactly
// what the bridge builds for a row it reads.
func TestBatchesAreBoundedByBytes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	table := db.Schema + ".sized"
	testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, name text, body text)")
	tb := setup(t, setupOpts{Table: table, DB: db})
	tb.Route(t, "ok", "k")
	tb.Route(t, "ok", "k2")

	// Small rows around rows just under, at and over LargeRowBytes, and
	// rows many times the batch's budget, all committed before the bridge
	// starts: the first drain sees them as one backlog.
	const budget, large = 64 << 10, 16 << 10
	sizes := []int{10, 100, large - 200, large, large + 1, 3 * budget, 10, 40 << 10, 50 << 10, 10 * budget, 10}
	// Each size comes as text that compresses well (stored small, large
	// as JSON) and as text that does not.
	var ids []string
	for _, n := range sizes {
		rows, err := db.Pool.Query(context.Background(), `INSERT INTO `+table+` (name, body)
			SELECT 'ok', $1 FROM generate_series(1, 2)
			UNION ALL
			SELECT 'ok', left((SELECT string_agg(md5(random()::text || g::text || i::text), '') FROM generate_series(0, $2::int / 32) i), $2::int)
			FROM generate_series(1, 2) g
			RETURNING id::text`, strings.Repeat("x", n), n)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		ids = append(ids, got...)
	}

	cfg := tb.Config
	cfg.MaxBatchBytes, cfg.LargeRowBytes = budget, large
	b, sigs := tb.startWatched(t, cfg)
	tb.WaitRecorded(t, len(ids))
	waitAccounted(t, sigs, len(ids))
	want := map[string][]string{}
	for _, id := range ids {
		want[id] = []string{"k", "k2"}
	}
	tb.requireExactlyOnce(t, want)
	require.Greater(t, b.Stats().Batches, int64(3), "the backlog took several batches")
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	read := histogram(t, reg, "notified_batch_row_bytes", map[string]string{"channel": db.Channel})
	require.Equal(t, uint64(b.Stats().Batches), read.GetSampleCount())
	require.Equal(t, read.GetSampleCount(), observedAtMost(t, read, budget), "a batch read more than MaxBatchBytes")
	require.Less(t, observedAtMost(t, read, budget/2), read.GetSampleCount(), "no batch was filled past half its budget")

	// Every job's args hold the row as it is, and the same metadata,
	// however the row was inserted.
	var bad []string
	rows, err := db.Pool.Query(context.Background(), `SELECT j.args->>'event_id'
		FROM `+db.Schema+`.river_job j JOIN `+table+` e ON e.id::text = j.args->>'event_id'
		WHERE j.args->'data' <> to_jsonb(e) OR j.args->>'event_name' <> 'ok' OR j.args->>'channel' <> $1
			OR j.metadata <> jsonb_build_object('notified', jsonb_build_object('event_id', e.id::text, 'event_name', 'ok', 'channel', $1::text))
			OR j.state <> 'available' OR j.max_attempts <> 25 OR j.priority <> 1 OR j.queue <> 'default'`, db.Channel)
	require.NoError(t, err)
	bad, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, bad, "jobs whose args or options differ from the row's")
}
