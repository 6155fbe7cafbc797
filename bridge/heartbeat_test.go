package bridge_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
)

func TestBridgeRegistersItselfWhileRunning(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := tb.cfg
	cfg.Version = "v9.9.9-test"
	b, err := bridge.New(context.Background(), tb.db.Pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(cancel)

	store := history.NewStore(tb.db.Pool, tb.db.Schema)
	var st *history.Status
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err = store.Status(context.Background(), tb.db.Channel, 0)
		require.NoError(t, err)
		return len(st.Bridges) == 1, "bridge not registered"
	})
	host, _ := os.Hostname()
	got := st.Bridges[0]
	require.Equal(t, host, got.Host)
	require.Equal(t, os.Getpid(), got.PID)
	require.Equal(t, "v9.9.9-test", got.Version)
	require.Equal(t, tb.db.Channel, got.Channel)
	require.InDelta(t, cfg.PollInterval.Seconds(), got.PollInterval, 1e-9)
	require.True(t, got.Alive)

	// The row is refreshed every poll interval.
	firstSeen := got.SeenAt
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err = store.Status(context.Background(), tb.db.Channel, 0)
		require.NoError(t, err)
		return len(st.Bridges) == 1 && st.Bridges[0].SeenAt.After(firstSeen), "seen_at not refreshed"
	})
	require.Equal(t, got.StartedAt, st.Bridges[0].StartedAt)

	// A graceful stop removes it.
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".notified_bridge"))
}

func TestBridgePrunesHistoryPastRetention(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, "e", "k")
	ids := tb.insertEvents(t, "e", "e", "other")
	// Old history, as if dispatched two days ago.
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_dispatch
		(channel, event_id, event_name, outcome, notified_at, dispatched_at)
		VALUES ($1, 'old', 'e', 'unrouted', now() - interval '2 days', now() - interval '2 days')`, tb.db.Channel)
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_job
		(job_id, channel, event_id, event_name, kind, queue, state, attempt, max_attempts, created_at, finalized_at)
		VALUES (-1, $1, 'old', 'e', 'k', 'default', 'completed', 1, 25, now() - interval '2 days', now() - interval '2 days')`, tb.db.Channel)

	cfg := tb.cfg
	cfg.Retention = 24 * time.Hour
	cfg.PruneInterval = 100 * time.Millisecond
	tb.start(t, nil, cfg)
	tb.waitRecorded(t, len(ids))
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".notified_dispatch WHERE event_id = 'old'") +
			testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".notified_job WHERE job_id = -1")
		return n == 0, "old history not pruned"
	})
	// Recent history stays.
	require.Equal(t, len(ids), testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".notified_dispatch"))
}

func TestBridgeKeepsHistoryForever(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_dispatch
		(channel, event_id, event_name, outcome, notified_at, dispatched_at)
		VALUES ($1, 'old', 'e', 'unrouted', now() - interval '400 days', now() - interval '400 days')`, tb.db.Channel)
	cfg := tb.cfg
	cfg.Retention = bridge.KeepForever
	cfg.PruneInterval = 10 * time.Millisecond
	tb.start(t, nil, cfg)
	ids := tb.insertEvents(t, "x")
	tb.waitRecorded(t, len(ids)+1)
	// Several prune intervals pass without pruning.
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 1, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".notified_dispatch WHERE event_id = 'old'"))
}

func TestConfigRejectsNegativeRetention(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := tb.cfg
	cfg.Retention = -2 * time.Hour
	_, err := bridge.New(context.Background(), tb.db.Pool, cfg)
	require.ErrorContains(t, err, "Retention -2h0m0s is negative")
	cfg.Retention = 0
	cfg.PruneInterval = -time.Second
	_, err = bridge.New(context.Background(), tb.db.Pool, cfg)
	require.ErrorContains(t, err, "PruneInterval -1s is negative")
}
