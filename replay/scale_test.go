package replay

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// TestReplayScale measures replays of 100,000 events of a 1,000,000-event
// history, right after a bulk load (no statistics: autovacuum may not have
// run yet) and after ANALYZE. It takes a few minutes and a few hundred MB,
// so it runs only when asked:
//
//	TEST_REPLAY_SCALE=1 go test -run TestReplayScale -v -timeout 30m ./replay/
//
// It logs the median and range of three runs of each: a dry run, a real
// replay (190,000 jobs), and the baseline for the real replay: the same
// rows fetched and the same jobs (args and metadata) inserted with River's
// InsertManyFastTx, 1,000 events per transaction, on one connection, from
// the same state (river_job emptied before each run).
func TestReplayScale(t *testing.T) {
	if os.Getenv("TEST_REPLAY_SCALE") == "" {
		t.Skip("set TEST_REPLAY_SCALE=1 to measure replays of 100,000 events of 1,000,000")
	}
	const history, from, to = 1_000_000, 400_001, 500_000
	ctx := context.Background()
	db := testdb.New(t)
	cfg := bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}

	start := time.Now()
	// 90% user_signed_up (two routes), 10% order_placed (one route).
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Events()+` (name, payload)
		SELECT CASE WHEN g % 10 = 0 THEN 'order_placed' ELSE 'user_signed_up' END,
		       jsonb_build_object('n', g, 'email', 'u' || g || '@example.com')
		FROM generate_series(1, $1::int) g`, history)
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.notified_dispatch (channel, event_id, event_name, outcome, notified_at, dispatched_at)
		SELECT $1, id::text, name, 'dispatched', created_at, created_at FROM `+db.Events(), db.Channel)
	store := routes.NewStore(db.Pool, db.Schema)
	for _, rt := range []routes.Route{{Event: "user_signed_up", Kind: "send_welcome"}, {Event: "user_signed_up", Kind: "sync_crm"},
		{Event: "order_placed", Kind: "ship_order"}} {
		require.NoError(t, store.Add(ctx, rt))
	}
	t.Logf("loaded %d events and dispatch records in %s", history, time.Since(start).Round(time.Second))

	rng := Selector{FromID: strconv.Itoa(from), ToID: strconv.Itoa(to)}
	dryRuns := func(label string) {
		var took []time.Duration
		for range 3 {
			res, err := Run(ctx, db.Pool, cfg, rng, Options{DryRun: true})
			require.NoError(t, err)
			require.Equal(t, []int{to - from + 1, to - from + 1, 190_000}, []int{res.Selected, res.Events, res.Jobs})
			took = append(took, time.Duration(res.Took*float64(time.Second)))
		}
		t.Logf("dry run of %d events, %s: %s", to-from+1, label, medianRange(took))
	}
	dryRuns("no statistics")

	emptyJobs := func() { testdb.Exec(t, db.Pool, "TRUNCATE "+db.Schema+".river_job") }
	var replays, baseline []time.Duration
	for i := range 3 {
		emptyJobs()
		res, err := Run(ctx, db.Pool, cfg, rng, Options{Reason: "scale " + strconv.Itoa(i), RequestedBy: "test"})
		require.NoError(t, err)
		require.Equal(t, 190_000, res.Jobs)
		replays = append(replays, time.Duration(res.Took*float64(time.Second)))

		emptyJobs()
		baseline = append(baseline, insertLikeReplay(t, db, cfg, from, to))
	}
	t.Logf("replay of %d events (190,000 jobs), no statistics: %s", to-from+1, medianRange(replays))
	t.Logf("baseline, the same rows and jobs with InsertManyFastTx: %s", medianRange(baseline))

	testdb.Exec(t, db.Pool, "ANALYZE "+db.Events())
	testdb.Exec(t, db.Pool, "ANALYZE "+db.Schema+".notified_dispatch")
	dryRuns("after ANALYZE")
}

// insertLikeReplay fetches the rows of ids from..to and inserts one job per
// route, as a replay would, 1,000 events per transaction, and returns how
// long it took.
func insertLikeReplay(t *testing.T, db *testdb.DB, cfg bridge.Config, from, to int) time.Duration {
	ctx := context.Background()
	start := time.Now()
	table, err := eventstable.Spec{Table: cfg.Table}.Inspect(ctx, db.Pool)
	require.NoError(t, err)
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Schema: db.Schema})
	require.NoError(t, err)
	byName := map[string][]routes.Route{}
	all, err := routes.NewStore(db.Pool, db.Schema).List(ctx)
	require.NoError(t, err)
	for _, rt := range all {
		byName[rt.Event] = append(byName[rt.Event], rt)
	}
	inserted := 0
	for lo := from; lo <= to; lo += 1000 {
		ids := make([]string, 0, 1000)
		for id := lo; id < lo+1000 && id <= to; id++ {
			ids = append(ids, strconv.Itoa(id))
		}
		require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, table.FetchSQL(), ids)
			if err != nil {
				return err
			}
			var params []river.InsertManyParams
			var id string
			var ev row
			if _, err := pgx.ForEachRow(rows, []any{&id, &ev.name, &ev.data}, func() error {
				src := jobs.Source{EventID: id, EventName: *ev.name, Channel: cfg.Channel, ReplayID: 1}
				params, err = jobparams.Append(params, src, slices.Clone(ev.data), byName[*ev.name], nil, nil)
				return err
			}); err != nil {
				return err
			}
			n, err := client.InsertManyFastTx(ctx, tx, params)
			inserted += n
			return err
		}))
	}
	require.Equal(t, 190_000, inserted)
	return time.Since(start)
}

// medianRange is "median 1.2s (1.1s to 1.4s)" of three durations.
func medianRange(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) string { return x.Round(10 * time.Millisecond).String() }
	return "median " + r(s[len(s)/2]) + " (" + r(s[0]) + " to " + r(s[len(s)-1]) + ")"
}
