package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// TestPostgresRestartLosesNothing restarts a throwaway server of its own
// while producers insert and a bridge dispatches, and checks that every
// committed event has exactly one job per route.
func TestPostgresRestartLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster := testdb.Cluster(t)

	pool, err := pgxpool.New(ctx, cluster.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const schema = "notified"
	_, err = migrations.Migrate(ctx, pool, schema)
	require.NoError(t, err)
	testdb.Exec(t, pool, "CREATE TABLE public.events (id bigserial PRIMARY KEY, name text, payload jsonb)")
	_, err = trigger.Install(ctx, pool, trigger.Options{Schema: schema, Table: "public.events"})
	require.NoError(t, err)
	store := routes.NewStore(pool, schema)
	require.NoError(t, store.Add(ctx, routes.Route{Event: "e", Kind: "k1"}))
	require.NoError(t, store.Add(ctx, routes.Route{Event: "e", Kind: "k2"}))

	tb := &testBundle{&bridgetest.Bundle{DB: &testdb.DB{Pool: pool, Schema: schema}}}
	b := tb.Start(t, pool, bridge.Config{Schema: schema, Table: "public.events", PollInterval: 200 * time.Millisecond, Logger: testLogger(t)})

	// Producers insert small transactions until told to stop, retrying
	// through the restart; whatever the table holds at the end was
	// committed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = pool.Exec(ctx, "INSERT INTO public.events (name) SELECT 'e' FROM generate_series(1, 20)")
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	waitEvents := func(n int) {
		testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
			var got int
			err := pool.QueryRow(ctx, "SELECT count(*) FROM public.events").Scan(&got)
			return err == nil && got >= n, fmt.Sprintf("%d events, want %d (%v)", got, n, err)
		})
	}
	waitEvents(200)
	require.NoError(t, cluster.Restart(ctx))
	var before int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM public.events").Scan(&before))
	waitEvents(before + 200)
	close(stop)
	wg.Wait()

	var events int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM public.events").Scan(&events))
	tb.WaitRecorded(t, events)
	want := map[string][]string{}
	rows, err := pool.Query(ctx, "SELECT id::text FROM public.events")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		want[id] = []string{"k1", "k2"}
	}
	require.NoError(t, rows.Err())
	tb.requireExactlyOnce(t, want)
	require.GreaterOrEqual(t, b.Stats().Reconnects, int64(1), "the listener reconnected")
}
