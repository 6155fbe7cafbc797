package history_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/publish"
	"github.com/notified/notified/routes"
)

// insertBridge registers a bridge row as a running bridge would, seen
// seenAgo ago.
func (tb *testBundle) insertBridge(t *testing.T, id, channel string, pollInterval, startedAgo, seenAgo time.Duration) {
	t.Helper()
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.table("notified_bridge")+`
		(id, channel, host, pid, version, poll_interval, started_at, seen_at)
		VALUES ($1, $2, 'host-'||$1, 4242, 'v1.2.3', $3, now() - $4::interval, now() - $5::interval)`,
		id, channel, pollInterval, startedAgo, seenAgo)
}

func TestStatus(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "good", Kind: "ok_handler"})
	tb.route(t, routes.Route{Event: "bad", Kind: "bad_handler", MaxAttempts: 1})
	tb.route(t, routes.Route{Event: "later", Kind: "parked_handler", Queue: "parked"})

	// Nothing yet: empty lists, no backlog.
	st, err := tb.store.Status(ctx, tb.db.Channel, 0)
	require.NoError(t, err)
	require.Zero(t, st.Backlog)
	require.Nil(t, st.OldestPending)
	require.Nil(t, st.OldestPendingAge)
	require.Empty(t, st.LastMinute)
	require.Empty(t, st.LastHour)
	require.Empty(t, st.Handlers)
	require.NotNil(t, st.Handlers)
	require.Zero(t, st.DeadLetters)
	require.Empty(t, st.Bridges)
	require.NotNil(t, st.Bridges)

	stopBridge := tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[okHandler](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Success(nil), nil
		}))
		require.NoError(t, jobs.Handle[badHandler](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Result{}, errors.New("bad thing happened")
		}))
	})

	for _, name := range []string{"good", "good", "bad"} {
		tb.waitEvent(t, tb.insertEvent(t, name), 1)
	}
	tb.waitEvent(t, tb.insertEvent(t, "nobody"), 0)
	later := tb.insertEvent(t, "later")
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		ev, err := tb.store.Event(ctx, tb.db.Channel, later)
		return err == nil && len(ev.Jobs) == 1, "the parked job is not inserted yet"
	})

	// A known backlog: three events announced with no bridge running, the
	// oldest 90 seconds ago.
	stopBridge()
	pub, err := publish.New(tb.db.Schema, tb.db.Channel)
	require.NoError(t, err)
	for _, id := range []string{"1001", "1002", "1003"} {
		require.NoError(t, pub.Notify(ctx, tb.db.Pool, id))
	}
	testdb.Exec(t, tb.db.Pool, "UPDATE "+tb.table("notified_outbox")+" SET created_at = now() - interval '90 seconds' WHERE event_id = '1002'")
	// Events recorded earlier: within the hour, and before it.
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.table("notified_dispatch")+
		` (channel, event_id, outcome, reason, notified_at, dispatched_at) VALUES
		($1, 'half-an-hour-ago', 'missing', 'gone', now() - interval '30 minutes', now() - interval '30 minutes'),
		($1, 'two-hours-ago', 'rejected', 'bad', now() - interval '2 hours', now() - interval '2 hours')`, tb.db.Channel)
	// Another channel's events are not counted.
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.table("notified_outbox")+" (channel, event_id, created_at) VALUES ('elsewhere', '1', now() - interval '1 day')")
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.table("notified_dispatch")+
		" (channel, event_id, outcome, notified_at) VALUES ('elsewhere', '1', 'dispatched', now())")

	tb.insertBridge(t, "b-alive", tb.db.Channel, 5*time.Second, 10*time.Minute, 0)
	tb.insertBridge(t, "b-gone", tb.db.Channel, 5*time.Second, 2*time.Hour, time.Hour)
	tb.insertBridge(t, "b-elsewhere", "elsewhere", 5*time.Second, time.Minute, 0)

	st, err = tb.store.Status(ctx, tb.db.Channel, 0)
	require.NoError(t, err)
	require.Equal(t, tb.db.Channel, st.Channel)
	require.WithinDuration(t, time.Now(), st.At, 5*time.Second)
	require.Equal(t, (24 * time.Hour).Seconds(), st.Window, "the default window is a day")

	require.Equal(t, int64(3), st.Backlog)
	require.NotNil(t, st.OldestPending)
	require.WithinDuration(t, st.At.Add(-90*time.Second), *st.OldestPending, time.Second)
	require.NotNil(t, st.OldestPendingAge)
	require.InDelta(t, 90, *st.OldestPendingAge, 1)

	// An outcome seen within the hour but not the minute may be listed with
	// a zero count in LastMinute.
	require.Equal(t, map[string]int64{"dispatched": 4, "unrouted": 1}, nonZero(st.LastMinute))
	require.Equal(t, map[string]int64{"dispatched": 4, "unrouted": 1, "missing": 1}, st.LastHour)

	require.Len(t, st.Handlers, 3)
	bad, ok, parked := st.Handlers[0], st.Handlers[1], st.Handlers[2]
	require.Equal(t, "bad_handler", bad.Handler)
	require.Equal(t, map[string]int64{"discarded": 1}, bad.States)
	require.True(t, bad.Failing)
	require.NotNil(t, bad.LastError)
	require.Equal(t, "bad thing happened", *bad.LastError)
	require.NotNil(t, bad.LastErrorAt)
	require.WithinDuration(t, st.At, *bad.LastErrorAt, 30*time.Second)
	require.Equal(t, "ok_handler", ok.Handler)
	require.Equal(t, map[string]int64{"completed": 2}, ok.States)
	require.False(t, ok.Failing)
	require.Nil(t, ok.LastError)
	require.Nil(t, ok.LastErrorAt)
	require.Equal(t, "parked_handler", parked.Handler)
	require.Equal(t, map[string]int64{"available": 1}, parked.States)
	require.False(t, parked.Failing)

	require.Equal(t, int64(1), st.DeadLetters)

	require.Len(t, st.Bridges, 2, "only this channel's bridges, oldest first")
	gone, alive := st.Bridges[0], st.Bridges[1]
	require.Equal(t, "b-gone", gone.ID)
	require.False(t, gone.Alive, "seen an hour ago")
	require.WithinDuration(t, st.At.Add(-time.Hour), gone.SeenAt, time.Second)
	require.Equal(t, "b-alive", alive.ID)
	require.True(t, alive.Alive, "seen now")
	require.Equal(t, "host-b-alive", alive.Host)
	require.Equal(t, 4242, alive.PID)
	require.Equal(t, "v1.2.3", alive.Version)
	require.Equal(t, tb.db.Channel, alive.Channel)
	require.Equal(t, 5.0, alive.PollInterval)
	require.WithinDuration(t, st.At.Add(-10*time.Minute), alive.StartedAt, time.Second)
	require.WithinDuration(t, st.At, alive.SeenAt, time.Second)

	// Finished jobs count within the window only; live jobs always.
	time.Sleep(10 * time.Millisecond)
	st, err = tb.store.Status(ctx, tb.db.Channel, 5*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, 0.005, st.Window)
	require.Equal(t, []history.HandlerStatus{{Handler: "parked_handler", States: map[string]int64{"available": 1}}}, st.Handlers)
	require.Zero(t, st.DeadLetters)

	// A discarded job retried (as River UI does) is live again: counted as
	// River has it now, not also as the discarded one notified recorded;
	// a retryable job's error is its handler's newest.
	testdb.Exec(t, tb.db.Pool, "UPDATE "+tb.table("river_job")+
		` SET state = 'retryable', finalized_at = NULL, scheduled_at = now() + interval '1 hour',
		      errors = errors || jsonb_build_object('at', now(), 'attempt', 2, 'error', 'still bad')
		  WHERE kind = 'bad_handler'`)
	st, err = tb.store.Status(ctx, tb.db.Channel, 0)
	require.NoError(t, err)
	require.Len(t, st.Handlers, 3)
	bad = st.Handlers[0]
	require.Equal(t, "bad_handler", bad.Handler)
	require.Equal(t, map[string]int64{"retryable": 1}, bad.States)
	require.True(t, bad.Failing)
	require.NotNil(t, bad.LastError)
	require.Equal(t, "still bad", *bad.LastError)
}

// nonZero returns m without its zero counts.
func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

type okHandler struct{}

func (okHandler) Kind() string { return "ok_handler" }

type badHandler struct{}

func (badHandler) Kind() string { return "bad_handler" }

func TestPrune(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "e", Kind: kindA{}.Kind()})
	stopBridge := tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindA](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Success(nil), nil
		}))
	})
	old := tb.insertEvent(t, "e")
	recent := tb.insertEvent(t, "e")
	tb.waitEvent(t, old, 1)
	tb.waitEvent(t, recent, 1)
	// A stopped bridge deletes its own row: the bridges below are all there
	// is.
	stopBridge()
	require.Zero(t, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.table("notified_bridge")))

	// Age the old event's history by two days.
	testdb.Exec(t, tb.db.Pool, "UPDATE "+tb.table("notified_dispatch")+" SET dispatched_at = now() - interval '2 days' WHERE event_id = $1", old)
	testdb.Exec(t, tb.db.Pool, "UPDATE "+tb.table("notified_job")+" SET finalized_at = now() - interval '2 days' WHERE event_id = $1", old)
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.table("notified_replay")+
		` (channel, requested_by, reason, selector, started_at) VALUES
		($1, 'alice', 'old replay', '{}', now() - interval '2 days'),
		($1, 'bob', 'new replay', '{}', now())`, tb.db.Channel)
	tb.insertBridge(t, "live", tb.db.Channel, 5*time.Second, time.Hour, 0)
	tb.insertBridge(t, "quiet-2h", tb.db.Channel, 5*time.Second, 3*time.Hour, 2*time.Hour)
	tb.insertBridge(t, "gone-2d", tb.db.Channel, 5*time.Second, 72*time.Hour, 48*time.Hour)

	cutoff := time.Now().Add(-24 * time.Hour)
	p, err := tb.store.Prune(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, history.Pruned{Events: 1, Jobs: 1, Replays: 1, Bridges: 1}, p)

	ids := func(sql string) []string {
		t.Helper()
		rows, err := tb.db.Pool.Query(ctx, sql)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Equal(t, []string{recent}, ids("SELECT event_id FROM "+tb.table("notified_dispatch")))
	require.Equal(t, []string{recent}, ids("SELECT event_id FROM "+tb.table("notified_job")))
	require.Equal(t, []string{"new replay"}, ids("SELECT reason FROM "+tb.table("notified_replay")))
	require.Equal(t, []string{"live", "quiet-2h"}, ids("SELECT id FROM "+tb.table("notified_bridge")+" ORDER BY id"))

	_, err = tb.store.Event(ctx, tb.db.Channel, old)
	require.True(t, errors.Is(err, history.ErrNotFound), "pruned event: %v", err)
	ev, err := tb.store.Event(ctx, tb.db.Channel, recent)
	require.NoError(t, err)
	require.Len(t, ev.Jobs, 1)

	p, err = tb.store.Prune(ctx, cutoff)
	require.NoError(t, err)
	require.Equal(t, history.Pruned{}, p, "a second run deletes nothing more")

	// Bridges not seen for a day go even when history is kept longer.
	tb.insertBridge(t, "gone-3d", tb.db.Channel, 5*time.Second, 96*time.Hour, 72*time.Hour)
	p, err = tb.store.Prune(ctx, time.Now().Add(-30*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, history.Pruned{Bridges: 1}, p)
	require.Equal(t, []string{"live", "quiet-2h"}, ids("SELECT id FROM "+tb.table("notified_bridge")+" ORDER BY id"))
}

// TestStatusCountsEachWebhookURLApart: webhook routes share their kind;
// each URL is a handler of its own in the status, so a refused URL is not
// hidden among another's deliveries.
func TestStatusCountsEachWebhookURLApart(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	const good, bad = "https://good.example/hook", "https://bad.example/hook?token=x"
	tb.route(t, routes.Route{Event: "signed_up", Webhook: good})
	tb.route(t, routes.Route{Event: "signed_up", Webhook: bad})
	tb.startBridge(t, 0)
	for range 2 {
		id := tb.insertEvent(t, "signed_up")
		testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
			ev, err := tb.store.Event(ctx, tb.db.Channel, id)
			return err == nil && len(ev.Jobs) == 2, "the event's two webhook jobs are not inserted yet"
		})
	}
	// One delivery to the bad URL was refused for good.
	testdb.Exec(t, tb.db.Pool, "UPDATE "+tb.table("river_job")+
		` SET state = 'cancelled', finalized_at = now(), errors = ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', 'webhook answered 404')]
		  WHERE id = (SELECT min(id) FROM `+tb.table("river_job")+` WHERE metadata->'notified'->'webhook'->>'url' = $1)`, bad)

	st, err := tb.store.Status(ctx, tb.db.Channel, 0)
	require.NoError(t, err)
	require.Len(t, st.Handlers, 2)
	b, g := st.Handlers[0], st.Handlers[1]
	require.Equal(t, "notified_webhook", b.Handler)
	require.Equal(t, bad, b.Webhook)
	require.Equal(t, map[string]int64{"available": 1, "cancelled": 1}, b.States)
	require.True(t, b.Failing)
	require.NotNil(t, b.LastError)
	require.Equal(t, "webhook answered 404", *b.LastError)
	require.Equal(t, "notified_webhook", g.Handler)
	require.Equal(t, good, g.Webhook)
	require.Equal(t, map[string]int64{"available": 2}, g.States)
	require.False(t, g.Failing)
}
