package bridge_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/trigger"
)

// waitReadiness polls b.Ready until ok reports true for its result.
func waitReadiness(t *testing.T, b *bridge.Bridge, timeout time.Duration, what string, ok func(bridge.Readiness, error) bool) bridge.Readiness {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := b.Ready(context.Background())
		if ok(r, err) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within %s; last readiness %+v, error %v", what, timeout, r, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func hasReason(r bridge.Readiness, fragment string) bool {
	for _, reason := range r.Reasons {
		if strings.Contains(reason, fragment) {
			return true
		}
	}
	return false
}

func TestNotReadyBeforeStart(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	r, err := b.Ready(context.Background())
	require.ErrorIs(t, err, bridge.ErrNotReady)
	require.False(t, r.Ready)
	require.True(t, r.Database)
	require.False(t, r.Listening)
	require.Nil(t, r.LastCatchUp)
	require.Equal(t, []string{
		`listener is not connected to channel "` + tb.DB.Channel + `"`,
		"the outbox has not been drained since start",
	}, r.Reasons)
}

func TestReadyWhileRunning(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.Start(t, nil, tb.Config)
	r := waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })
	require.True(t, r.Ready)
	require.True(t, r.Database)
	require.True(t, r.Listening)
	require.Empty(t, r.Reasons)
	require.WithinDuration(t, time.Now(), *r.LastCatchUp, 3*tb.Config.PollInterval)
}

func TestReadyFlipsWhenListenerTerminated(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.Start(t, nil, tb.Config)
	waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })

	// Terminate the listener's backend; the bridge reconnects within a
	// backoff of 50-100ms, while which it is not ready.
	var seen atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !seen.Load() {
			if r, err := b.Ready(context.Background()); err != nil && hasReason(r, "listener is not connected") {
				seen.Store(true)
			}
		}
	}()
	testdb.Exec(t, tb.DB.Pool, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
		"notified-bridge listener "+tb.DB.Channel)
	<-done
	require.True(t, seen.Load(), "readiness never reported the listener down")
	waitReadiness(t, b, 10*time.Second, "ready again", func(r bridge.Readiness, err error) bool { return err == nil && r.Listening })
	require.GreaterOrEqual(t, b.Stats().Reconnects, int64(1))
}

func TestNotReadyWhenCatchUpIsStale(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	cfg := tb.Config
	cfg.PollInterval = 50 * time.Millisecond
	b, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.NoError(t, err)
	var failing atomic.Bool
	bridge.SetTestHook(b, func(string) error {
		if failing.Load() {
			return errors.New("injected failure")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })

	// Every dispatch now fails: the last complete drain grows old.
	failing.Store(true)
	tb.InsertEvents(t, "e")
	r := waitReadiness(t, b, 10*time.Second, "stale catch-up", func(r bridge.Readiness, err error) bool {
		return hasReason(r, "last complete drain of the outbox was")
	})
	require.True(t, r.Listening, "only the catch-up is wrong")
	require.Len(t, r.Reasons, 1)
	require.Contains(t, r.Reasons[0], "more than 3 poll intervals (150ms)")

	failing.Store(false)
	waitReadiness(t, b, 10*time.Second, "ready again", func(r bridge.Readiness, err error) bool { return err == nil })
	tb.WaitRecorded(t, 1)
}

func TestPollOnlyDispatchesWithoutListening(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	cfg := tb.Config
	cfg.PollOnly = true
	cfg.PollInterval = 100 * time.Millisecond
	b, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ids := tb.InsertEvents(t, "e", "e", "e")
	tb.WaitRecorded(t, len(ids))
	require.Len(t, tb.jobsByEvent(t), len(ids))
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
		"notified-bridge listener "+tb.DB.Channel), "a poll-only bridge opens no listener connection")
	require.Zero(t, b.Stats().Notifications)
	r := waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })
	require.True(t, r.PollOnly)
	require.False(t, r.Listening)
}

// TestNotReadyWhileDatabaseIsDown stops a throwaway server of its own under
// a running bridge and starts it again.
func TestNotReadyWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster := testdb.Cluster(t)
	pool, err := pgxpool.New(ctx, cluster.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const schema = "notified"
	_, err = migrations.Migrate(ctx, pool, schema)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "CREATE TABLE events (id bigserial PRIMARY KEY, name text)")
	require.NoError(t, err)
	_, err = trigger.Install(ctx, pool, trigger.Options{Schema: schema, Table: "events", Channel: "events"})
	require.NoError(t, err)
	b, err := bridge.New(ctx, pool, bridge.Config{Schema: schema, PollInterval: 100 * time.Millisecond, Logger: testLogger(t)})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReadiness(t, b, 10*time.Second, "ready", func(r bridge.Readiness, err error) bool { return err == nil })

	require.NoError(t, cluster.Pause(ctx))
	r := waitReadiness(t, b, 10*time.Second, "not ready", func(r bridge.Readiness, err error) bool {
		return !r.Database && !r.Listening
	})
	require.True(t, hasReason(r, "database does not answer"), "%v", r.Reasons)
	require.True(t, hasReason(r, "listener is not connected"), "%v", r.Reasons)

	require.NoError(t, cluster.Resume(ctx))
	waitReadiness(t, b, 30*time.Second, "ready again", func(r bridge.Readiness, err error) bool { return err == nil })
}
