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
	cfg := tb.Config
	cfg.Version = "v9.9.9-test"
	b, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.NoError(t, err)
	sigs := bridge.WatchSignals(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(cancel)

	store := history.NewStore(tb.DB.Pool, tb.DB.Schema)
	sigs.Heartbeat.WaitUntil(t, "bridge registered", func(beats []struct{}) bool { return len(beats) >= 1 })
	st, err := store.Status(context.Background(), tb.DB.Channel, 0)
	require.NoError(t, err)
	require.Len(t, st.Bridges, 1)
	host, _ := os.Hostname()
	got := st.Bridges[0]
	require.Equal(t, host, got.Host)
	require.Equal(t, os.Getpid(), got.PID)
	require.Equal(t, "v9.9.9-test", got.Version)
	require.Equal(t, tb.DB.Channel, got.Channel)
	require.InDelta(t, cfg.PollInterval.Seconds(), got.PollInterval, 1e-9)
	require.True(t, got.Alive)

	// The row is refreshed every poll interval. Of the next two
	// heartbeats, the second began after seen_at was read.
	firstSeen := got.SeenAt
	seen := len(sigs.Heartbeat.All())
	sigs.Heartbeat.WaitUntil(t, "two more heartbeats", func(beats []struct{}) bool { return len(beats) >= seen+2 })
	st, err = store.Status(context.Background(), tb.DB.Channel, 0)
	require.NoError(t, err)
	require.Len(t, st.Bridges, 1)
	require.True(t, st.Bridges[0].SeenAt.After(firstSeen), "seen_at %s not refreshed after %s", st.Bridges[0].SeenAt, firstSeen)
	require.Equal(t, got.StartedAt, st.Bridges[0].StartedAt)

	// A graceful stop removes it.
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_bridge"))
}

func TestBridgePrunesHistoryPastRetention(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	ids := tb.InsertEvents(t, "e", "e", "other")
	// Old history, as if dispatched two days ago.
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_dispatch
		(channel, event_id, event_name, outcome, notified_at, dispatched_at)
		VALUES ($1, 'old', 'e', 'unrouted', now() - interval '2 days', now() - interval '2 days')`, tb.DB.Channel)
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_job
		(job_id, channel, event_id, event_name, kind, queue, state, attempt, max_attempts, created_at, finalized_at)
		VALUES (-1, $1, 'old', 'e', 'k', 'default', 'completed', 1, 25, now() - interval '2 days', now() - interval '2 days')`, tb.DB.Channel)

	cfg := tb.Config
	cfg.Retention = 24 * time.Hour
	cfg.PruneInterval = 100 * time.Millisecond
	_, sigs := tb.startWatched(t, cfg)
	tb.WaitRecorded(t, len(ids))
	// Of the next two prunes, the second began after the recent history
	// was recorded.
	done := len(sigs.Pruned.All())
	all := sigs.Pruned.WaitUntil(t, "two more prunes", func(all []history.Pruned) bool { return len(all) >= done+2 })
	var pruned history.Pruned
	for _, p := range all {
		pruned.Events, pruned.Jobs, pruned.Replays, pruned.Bridges = pruned.Events+p.Events, pruned.Jobs+p.Jobs, pruned.Replays+p.Replays, pruned.Bridges+p.Bridges
	}
	require.Equal(t, history.Pruned{Events: 1, Jobs: 1}, pruned, "the old history, and only it, was pruned")
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch WHERE event_id = 'old'"))
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_job WHERE job_id = -1"))
	// Recent history stays.
	require.Equal(t, len(ids), testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch"))
}

func TestBridgeKeepsHistoryForever(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_dispatch
		(channel, event_id, event_name, outcome, notified_at, dispatched_at)
		VALUES ($1, 'old', 'e', 'unrouted', now() - interval '400 days', now() - interval '400 days')`, tb.DB.Channel)
	cfg := tb.Config
	cfg.Retention = bridge.KeepForever
	cfg.PruneInterval = 10 * time.Millisecond
	_, sigs := tb.startWatched(t, cfg)
	ids := tb.InsertEvents(t, "x")
	tb.WaitRecorded(t, len(ids)+1)
	// Housekeeping refreshes the bridge's row, then waits for the
	// heartbeat ticker (every poll interval, 200ms) or the prune timer. A
	// prune timer, had it been set, would have fired 10ms after start and
	// been chosen before the second heartbeat; the third leaves room for a
	// machine so slow that both were ready at once.
	sigs.Heartbeat.WaitUntil(t, "three heartbeats", func(beats []struct{}) bool { return len(beats) >= 3 })
	require.Empty(t, sigs.Pruned.All(), "history was pruned")
	require.Equal(t, 1, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch WHERE event_id = 'old'"))
}

func TestConfigRejectsNegativeRetention(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := tb.Config
	cfg.Retention = -2 * time.Hour
	_, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.ErrorContains(t, err, "Retention -2h0m0s is negative")
	cfg.Retention = 0
	cfg.PruneInterval = -time.Second
	_, err = bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.ErrorContains(t, err, "PruneInterval -1s is negative")
}
