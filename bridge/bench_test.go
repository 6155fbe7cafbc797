package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// BenchmarkBurst commits b.N × 1,000 events in transactions of 1,000 rows
// while a bridge runs, and reports events/s and jobs/s from the first
// commit to the last dispatch, measured with the database's clock:
//
//	go test ./bridge -run '^$' -bench 'Burst' -benchtime 100x
func BenchmarkBurst(b *testing.B) {
	for _, routeCount := range []int{1, 3} {
		b.Run(fmt.Sprintf("routes=%d", routeCount), func(b *testing.B) {
			benchBurst(b, routeCount)
		})
	}
}

func benchBurst(b *testing.B, routeCount int) {
	tb := setup(b)
	db := tb.DB
	for i := range routeCount {
		tb.Route(b, "e", fmt.Sprintf("k%d", i))
	}
	cfg := tb.Config
	cfg.PollInterval = time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	tb.Start(b, nil, cfg)
	ctx := context.Background()
	events := b.N * 1000

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		_, err := db.Pool.Exec(ctx, "INSERT INTO "+db.Events()+" (name, payload) SELECT 'e', jsonb_build_object('i', i) FROM generate_series(1, 1000) AS i")
		require.NoError(b, err)
	}
	testdb.WaitFor(b, 10*time.Minute, func() (bool, string) {
		n := testdb.Count(b, db.Pool, "SELECT count(*) FROM "+db.Schema+".notified_dispatch")
		return n == events, fmt.Sprintf("%d of %d dispatched", n, events)
	})
	wall := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(events)/wall.Seconds(), "wall-events/s")
	var secs float64
	require.NoError(b, db.Pool.QueryRow(ctx, "SELECT extract(epoch FROM max(dispatched_at) - min(notified_at))::float8 FROM "+db.Schema+".notified_dispatch").Scan(&secs))
	b.ReportMetric(float64(events)/secs, "events/s")
	b.ReportMetric(float64(events*routeCount)/secs, "jobs/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRiverInsertManyFast is the baseline for BenchmarkBurst: the same
// number of jobs with args of the same shape, inserted straight into River
// with InsertManyFastTx in batches of 1,000 on one connection.
//
//	go test ./bridge -run '^$' -bench 'RiverInsertManyFast' -benchtime 100x
func BenchmarkRiverInsertManyFast(b *testing.B) {
	db := testdb.New(b)
	ctx := context.Background()
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Schema: db.Schema})
	require.NoError(b, err)
	params := make([]river.InsertManyParams, 1000)
	b.ResetTimer()
	start := time.Now()
	for n := range b.N {
		for i := range params {
			id := strconv.Itoa(n*1000 + i)
			params[i] = river.InsertManyParams{Args: baselineArgs{Payload: jobs.Payload{
				EventID: id, EventName: "e", Channel: db.Channel,
				Data: json.RawMessage(`{"id": ` + id + `, "name": "e", "payload": {"i": ` + id + `}, "created_at": "2026-11-27T11:21:36.745123+00:00"}`),
			}}, InsertOpts: &river.InsertOpts{Metadata: []byte(`{"notified": {"event_id": "` + id + `", "event_name": "e", "channel": "` + db.Channel + `"}}`)}}
		}
		tx, err := db.Pool.Begin(ctx)
		require.NoError(b, err)
		_, err = client.InsertManyFastTx(ctx, tx, params)
		require.NoError(b, err)
		require.NoError(b, tx.Commit(ctx))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "jobs/s")
	b.ReportMetric(0, "ns/op")
}

type baselineArgs struct{ jobs.Payload }

func (baselineArgs) Kind() string { return "k0" }

// BenchmarkDispatchTransaction runs one dispatch transaction of 1,000
// events with one route each: claim, fetch, record, insert the jobs and
// commit. The events are committed before each transaction, outside the
// timer:
//
//	go test ./bridge -run '^$' -bench 'DispatchTransaction' -benchtime 50x -count 5
func BenchmarkDispatchTransaction(b *testing.B) {
	benchmarkDispatch(b, []routes.Route{{Event: "e", Kind: "k0"}})
}

// BenchmarkDispatchFilters runs BenchmarkDispatchTransaction's transaction
// with three routes, without and with a filter on each that every row
// matches: the same jobs, and the cost of the filters.
//
//	go test ./bridge -run '^$' -bench 'DispatchFilters' -benchtime 50x -count 5
func BenchmarkDispatchFilters(b *testing.B) {
	wheres := []string{"$.payload.i > 0", `$.name == "e"`, `strict $.payload.i < 1000000`}
	for _, filters := range []bool{false, true} {
		b.Run(fmt.Sprintf("filters=%t", filters), func(b *testing.B) {
			rs := make([]routes.Route, len(wheres))
			for i, w := range wheres {
				rs[i] = routes.Route{Event: "e", Kind: fmt.Sprintf("k%d", i)}
				if filters {
					rs[i].Where = w
				}
			}
			benchmarkDispatch(b, rs)
		})
	}
}

func benchmarkDispatch(b *testing.B, rs []routes.Route) {
	tb := setup(b)
	require.NoError(b, routes.NewStore(tb.DB.Pool, tb.DB.Schema).Ensure(context.Background(), rs...))
	cfg := tb.Config
	cfg.Logger = slog.New(slog.DiscardHandler)
	ctx := context.Background()
	br, err := bridge.New(ctx, tb.DB.Pool, cfg)
	require.NoError(b, err)
	for b.Loop() {
		b.StopTimer()
		_, err := tb.DB.Pool.Exec(ctx, "INSERT INTO "+tb.DB.Events()+" (name, payload) SELECT 'e', jsonb_build_object('i', i) FROM generate_series(1, 1000) AS i")
		require.NoError(b, err)
		b.StartTimer()
		n, err := bridge.DispatchOnce(ctx, br)
		require.NoError(b, err)
		require.Equal(b, 1000, n)
	}
}
