package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/publish"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// Handler kinds used by the tests. Each test has its own schema, so tests
// share kind names without seeing each other's jobs.
type (
	kindA      struct{}
	kindB      struct{}
	kindFlaky  struct{}
	kindBroken struct{}
	kindRefuse struct{}
	kindGiveUp struct{}
)

func (kindA) Kind() string      { return "handler_a" }
func (kindB) Kind() string      { return "handler_b" }
func (kindFlaky) Kind() string  { return "flaky" }
func (kindBroken) Kind() string { return "broken" }
func (kindRefuse) Kind() string { return "refuse" }
func (kindGiveUp) Kind() string { return "give_up" }

// retrySoon retries a failed job after 10ms, so retry tests are fast.
type retrySoon struct{}

func (retrySoon) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

// testBundle is one test's database (schema, events table with the capture
// trigger, channel) and a history store on it.
type testBundle struct {
	db    *testdb.DB
	store *history.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{
		Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
	})
	require.NoError(t, err)
	return &testBundle{db: db, store: history.NewStore(db.Pool, db.Schema)}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// table is the quoted name of a table or view in the test's schema.
func (tb *testBundle) table(name string) string {
	return pgx.Identifier{tb.db.Schema, name}.Sanitize()
}

func (tb *testBundle) route(t *testing.T, r routes.Route) {
	t.Helper()
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Add(context.Background(), r))
}

// startBridge runs a bridge on the test's channel until stop is called or
// the test ends. missingGrace 0 means the bridge tests' 500ms.
func (tb *testBundle) startBridge(t *testing.T, missingGrace time.Duration) (stop func()) {
	t.Helper()
	if missingGrace == 0 {
		missingGrace = 500 * time.Millisecond
	}
	b, err := bridge.New(context.Background(), tb.db.Pool, bridge.Config{
		Schema: tb.db.Schema, Table: tb.db.Events(), Channel: tb.db.Channel,
		PollInterval: 200 * time.Millisecond, MissingGrace: missingGrace, Logger: testLogger(t),
	})
	require.NoError(t, err)
	return bridgetest.Start(t, b)
}

// startWorkers runs a River client working the default queue with the
// handlers register adds, until the test ends. Failed jobs are retried after
// 10ms.
func (tb *testBundle) startWorkers(t *testing.T, register func(w *river.Workers)) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	register(workers)
	client, err := river.NewClient(riverpgxv5.New(tb.db.Pool), &river.Config{
		Schema: tb.db.Schema, Workers: workers, TestOnly: true,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		FetchPollInterval: 20 * time.Millisecond, FetchCooldown: 5 * time.Millisecond,
		RetryPolicy: retrySoon{},
		Logger:      testLogger(t),
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	return client
}

// insertEvent inserts one event named name and returns its id.
func (tb *testBundle) insertEvent(t *testing.T, name string) string {
	t.Helper()
	var id string
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(),
		"INSERT INTO "+tb.db.Events()+" (name, payload) VALUES ($1, jsonb_build_object('name', $1::text)) RETURNING id::text", name).Scan(&id))
	return id
}

func isFinal(state string) bool {
	return state == history.StateCompleted || state == history.StateCancelled || state == history.StateDiscarded
}

// waitEvent waits until the event is recorded with n jobs, all of them in a
// final state, and returns its history.
func (tb *testBundle) waitEvent(t *testing.T, id string, n int) *history.Event {
	t.Helper()
	var ev *history.Event
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		var err error
		ev, err = tb.store.Event(context.Background(), tb.db.Channel, id)
		if err != nil {
			return false, err.Error()
		}
		if ev.Outcome == history.OutcomePending {
			return false, "event still pending"
		}
		states := make([]string, 0, len(ev.Jobs))
		final := 0
		for _, j := range ev.Jobs {
			states = append(states, j.Handler+"="+j.State)
			if isFinal(j.State) {
				final++
			}
		}
		return len(ev.Jobs) == n && final == n, fmt.Sprintf("event %s %s with jobs %v, want %d final", id, ev.Outcome, states, n)
	})
	return ev
}

// byHandler indexes an event's jobs by handler, requiring one job each.
func byHandler(t *testing.T, ev *history.Event) map[string]history.Job {
	t.Helper()
	out := map[string]history.Job{}
	for _, j := range ev.Jobs {
		_, dup := out[j.Handler]
		require.False(t, dup, "two jobs for handler %s", j.Handler)
		out[j.Handler] = j
	}
	return out
}

// requireFinished checks the fields every finished job of the event has.
func requireFinished(t *testing.T, id, name string, j history.Job) {
	t.Helper()
	require.Equal(t, id, j.EventID)
	require.Equal(t, name, j.EventName)
	require.Equal(t, river.QueueDefault, j.Queue)
	require.NotZero(t, j.ID)
	require.False(t, j.CreatedAt.IsZero())
	require.NotNil(t, j.AttemptedAt, "attempted_at of job %d", j.ID)
	require.NotNil(t, j.FinalizedAt, "finalized_at of job %d", j.ID)
	require.False(t, j.FinalizedAt.Before(*j.AttemptedAt), "job %d finalized before its attempt", j.ID)
	require.Nil(t, j.ReplayID)
	require.Nil(t, j.ReplayedBy)
	require.Nil(t, j.ReplayReason)
}

func TestEventHistorySuccess(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "user_signed_up", Kind: kindA{}.Kind()})
	tb.route(t, routes.Route{Event: "user_signed_up", Kind: kindB{}.Kind()})
	tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		handler := func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Success(map[string]any{"handled_by": ev.Job.Kind, "event": ev.ID}), nil
		}
		require.NoError(t, jobs.Handle[kindA](w, handler))
		require.NoError(t, jobs.Handle[kindB](w, handler))
	})

	before := time.Now()
	id := tb.insertEvent(t, "user_signed_up")
	ev := tb.waitEvent(t, id, 2)

	require.Equal(t, tb.db.Channel, ev.Channel)
	require.Equal(t, id, ev.ID)
	require.Equal(t, history.OutcomeDispatched, ev.Outcome)
	require.NotNil(t, ev.Name)
	require.Equal(t, "user_signed_up", *ev.Name)
	require.Nil(t, ev.Reason)
	require.WithinDuration(t, before, ev.NotifiedAt, 5*time.Second)
	require.NotNil(t, ev.DispatchedAt)
	require.False(t, ev.DispatchedAt.Before(ev.NotifiedAt))
	require.Equal(t, []history.Route{
		{Handler: "handler_a", Queue: "default", Priority: 1, MaxAttempts: 25},
		{Handler: "handler_b", Queue: "default", Priority: 1, MaxAttempts: 25},
	}, ev.Routes)
	require.Len(t, ev.Jobs, 2)
	require.Less(t, ev.Jobs[0].ID, ev.Jobs[1].ID, "jobs are oldest first")
	got := byHandler(t, ev)
	for _, kind := range []string{"handler_a", "handler_b"} {
		j, ok := got[kind]
		require.True(t, ok, "no job for %s", kind)
		requireFinished(t, id, "user_signed_up", j)
		require.Equal(t, history.StateCompleted, j.State)
		require.Equal(t, 1, j.Attempt)
		require.Equal(t, 25, j.MaxAttempts)
		require.Nil(t, j.LastError)
		require.JSONEq(t, fmt.Sprintf(`{"handled_by": %q, "event": %q}`, kind, id), string(j.Output))
	}
}

func TestEventHistoryRetryThenSuccess(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "order_placed", Kind: kindFlaky{}.Kind()})
	tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindFlaky](w, func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			if ev.Job.Attempt == 1 {
				return jobs.Result{}, errors.New("smtp timeout on first try")
			}
			return jobs.Success(map[string]int{"attempt": ev.Job.Attempt}), nil
		}))
	})

	id := tb.insertEvent(t, "order_placed")
	ev := tb.waitEvent(t, id, 1)
	require.Equal(t, history.OutcomeDispatched, ev.Outcome)
	j := ev.Jobs[0]
	requireFinished(t, id, "order_placed", j)
	require.Equal(t, "flaky", j.Handler)
	require.Equal(t, history.StateCompleted, j.State)
	require.Equal(t, 2, j.Attempt)
	require.NotNil(t, j.LastError, "the first attempt's error is kept")
	require.Equal(t, "smtp timeout on first try", *j.LastError)
	require.JSONEq(t, `{"attempt": 2}`, string(j.Output))
}

func TestEventHistoryDiscard(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "invoice_due", Kind: kindBroken{}.Kind(), MaxAttempts: 2})
	tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindBroken](w, func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Result{}, fmt.Errorf("attempt %d: billing service down", ev.Job.Attempt)
		}))
	})

	id := tb.insertEvent(t, "invoice_due")
	ev := tb.waitEvent(t, id, 1)
	require.Equal(t, []history.Route{{Handler: "broken", Queue: "default", Priority: 1, MaxAttempts: 2}}, ev.Routes)
	j := ev.Jobs[0]
	requireFinished(t, id, "invoice_due", j)
	require.Equal(t, history.StateDiscarded, j.State)
	require.Equal(t, 2, j.Attempt)
	require.Equal(t, 2, j.MaxAttempts)
	require.NotNil(t, j.LastError)
	require.Equal(t, "attempt 2: billing service down", *j.LastError, "the last attempt's error")
	require.Empty(t, j.Output)
}

func TestEventHistoryCancel(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "user_deleted", Kind: kindRefuse{}.Kind()})
	tb.route(t, routes.Route{Event: "user_deleted", Kind: kindGiveUp{}.Kind()})
	tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindRefuse](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Failure(map[string]string{"reason": "invalid address"}), nil
		}))
		require.NoError(t, jobs.Handle[kindGiveUp](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Result{}, jobs.Permanent(errors.New("payload cannot be parsed"))
		}))
	})

	id := tb.insertEvent(t, "user_deleted")
	ev := tb.waitEvent(t, id, 2)
	require.Equal(t, history.OutcomeDispatched, ev.Outcome)
	got := byHandler(t, ev)

	refused := got["refuse"]
	requireFinished(t, id, "user_deleted", refused)
	require.Equal(t, history.StateCancelled, refused.State)
	require.Equal(t, 1, refused.Attempt, "a FAILURE result is not retried")
	require.JSONEq(t, `{"reason": "invalid address"}`, string(refused.Output))
	require.NotNil(t, refused.LastError)
	require.Equal(t, `JobCancelError: handler reported FAILURE for event `+id+`: {"reason":"invalid address"}`, *refused.LastError)

	gaveUp := got["give_up"]
	requireFinished(t, id, "user_deleted", gaveUp)
	require.Equal(t, history.StateCancelled, gaveUp.State)
	require.Equal(t, 1, gaveUp.Attempt, "a permanent error is not retried")
	require.Empty(t, gaveUp.Output)
	require.NotNil(t, gaveUp.LastError)
	require.Equal(t, "JobCancelError: payload cannot be parsed", *gaveUp.LastError)
}

// requireNoJobs checks an event recorded without jobs.
func requireNoJobs(t *testing.T, ev *history.Event) {
	t.Helper()
	require.NotNil(t, ev.DispatchedAt)
	require.Empty(t, ev.Routes)
	require.NotNil(t, ev.Routes, "routes are an empty list, not null")
	require.Empty(t, ev.Jobs)
	require.NotNil(t, ev.Jobs, "jobs are an empty list, not null")
}

func TestEventHistoryUnrouted(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "something_else", Kind: kindA{}.Kind()})
	tb.startBridge(t, 0)

	id := tb.insertEvent(t, "nobody_listens")
	ev := tb.waitEvent(t, id, 0)
	require.Equal(t, history.OutcomeUnrouted, ev.Outcome)
	require.NotNil(t, ev.Name)
	require.Equal(t, "nobody_listens", *ev.Name)
	require.NotNil(t, ev.Reason)
	require.Equal(t, `no route for event name "nobody_listens"`, *ev.Reason)
	requireNoJobs(t, ev)
}

func TestEventHistoryMissing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "anything", Kind: kindA{}.Kind()})
	tb.startBridge(t, 50*time.Millisecond)

	pub, err := publish.New(tb.db.Schema, tb.db.Channel)
	require.NoError(t, err)
	require.NoError(t, pub.Notify(context.Background(), tb.db.Pool, "987654"))
	ev := tb.waitEvent(t, "987654", 0)
	require.Equal(t, history.OutcomeMissing, ev.Outcome)
	require.Nil(t, ev.Name)
	require.NotNil(t, ev.Reason)
	require.Equal(t, "no row in "+tb.db.Events()+" with id = 987654 after 50ms", *ev.Reason)
	requireNoJobs(t, ev)
}

func TestEventHistoryRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, routes.Route{Event: "anything", Kind: kindA{}.Kind()})
	tb.startBridge(t, 0)

	pub, err := publish.New(tb.db.Schema, tb.db.Channel)
	require.NoError(t, err)
	require.NoError(t, pub.Notify(context.Background(), tb.db.Pool, "not-a-number"))
	ev := tb.waitEvent(t, "not-a-number", 0)
	require.Equal(t, history.OutcomeRejected, ev.Outcome)
	require.Nil(t, ev.Name)
	require.NotNil(t, ev.Reason)
	require.Equal(t, `payload "not-a-number" is not a valid bigint id`, *ev.Reason)
	requireNoJobs(t, ev)
}

func TestEventHistoryPending(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "waiting", Kind: kindA{}.Kind()})

	// No bridge runs: the trigger's outbox row is all there is.
	id := tb.insertEvent(t, "waiting")
	var created time.Time
	require.NoError(t, tb.db.Pool.QueryRow(ctx, "SELECT created_at FROM "+tb.table("notified_outbox")+
		" WHERE channel = $1 AND event_id = $2", tb.db.Channel, id).Scan(&created))

	ev, err := tb.store.Event(ctx, tb.db.Channel, id)
	require.NoError(t, err)
	require.Equal(t, tb.db.Channel, ev.Channel)
	require.Equal(t, id, ev.ID)
	require.Equal(t, history.OutcomePending, ev.Outcome)
	require.True(t, created.Equal(ev.NotifiedAt), "notified at %s, outbox row created at %s", ev.NotifiedAt, created)
	require.Nil(t, ev.DispatchedAt)
	require.Nil(t, ev.Name)
	require.NotNil(t, ev.Reason)
	require.Equal(t, "in the outbox, not dispatched yet: is a bridge running for this channel?", *ev.Reason)
	require.Empty(t, ev.Routes)
	require.Empty(t, ev.Jobs)
}

func TestEventNotFound(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	_, err := tb.store.Event(ctx, tb.db.Channel, "12345")
	require.Error(t, err)
	require.True(t, errors.Is(err, history.ErrNotFound), "error %v is not ErrNotFound", err)
	require.EqualError(t, err, `event not found: no event 12345 on channel "`+tb.db.Channel+`" has been notified (or its history is past the retention)`)

	// An event announced on another channel is not this channel's.
	pub, err := publish.New(tb.db.Schema, "other_channel")
	require.NoError(t, err)
	require.NoError(t, pub.Notify(ctx, tb.db.Pool, "12345"))
	testdb.Exec(t, tb.db.Pool, "INSERT INTO "+tb.table("notified_dispatch")+
		" (channel, event_id, outcome, reason, notified_at) VALUES ('other_channel', '12345', 'missing', 'gone', now())")
	_, err = tb.store.Event(ctx, tb.db.Channel, "12345")
	require.True(t, errors.Is(err, history.ErrNotFound), "error %v is not ErrNotFound", err)
	ev, err := tb.store.Event(ctx, "other_channel", "12345")
	require.NoError(t, err)
	require.Equal(t, history.OutcomeMissing, ev.Outcome)
}

// historyRow is one row of the notified_history view.
type historyRow struct {
	EventID   string
	Outcome   string
	Reason    *string
	Handler   *string
	JobID     *int64
	State     *string
	Attempt   *int
	LastError *string
	Output    []byte
}

func (tb *testBundle) historyRows(t *testing.T) []historyRow {
	t.Helper()
	rows, err := tb.db.Pool.Query(context.Background(), `SELECT event_id, outcome, reason, handler, job_id, state, attempt, last_error, output
		FROM `+tb.table("notified_history")+` WHERE channel = $1 ORDER BY event_id, handler NULLS FIRST, job_id`, tb.db.Channel)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (historyRow, error) {
		var r historyRow
		err := row.Scan(&r.EventID, &r.Outcome, &r.Reason, &r.Handler, &r.JobID, &r.State, &r.Attempt, &r.LastError, &r.Output)
		return r, err
	})
	require.NoError(t, err)
	return out
}

func TestHistorySurvivesJobCleaner(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "signup", Kind: kindA{}.Kind()})
	tb.route(t, routes.Route{Event: "signup", Kind: kindFlaky{}.Kind()})
	tb.route(t, routes.Route{Event: "signup", Kind: kindBroken{}.Kind(), MaxAttempts: 2})
	tb.route(t, routes.Route{Event: "signup", Kind: kindRefuse{}.Kind()})
	tb.startBridge(t, 0)
	tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindA](w, func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			return jobs.Success(map[string]string{"sent_to": "someone"}), nil
		}))
		require.NoError(t, jobs.Handle[kindFlaky](w, func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			if ev.Job.Attempt == 1 {
				return jobs.Result{}, errors.New("transient")
			}
			return jobs.Success(nil), nil
		}))
		require.NoError(t, jobs.Handle[kindBroken](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Result{}, errors.New("always down")
		}))
		require.NoError(t, jobs.Handle[kindRefuse](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Failure(map[string]bool{"valid": false}), nil
		}))
	})

	id := tb.insertEvent(t, "signup")
	unrouted := tb.insertEvent(t, "nobody")
	before := tb.waitEvent(t, id, 4)
	tb.waitEvent(t, unrouted, 0)

	// The view has one row per job while River still has the jobs (River's
	// row and the recorded outcome are not both listed) ...
	live := tb.historyRows(t)
	require.Len(t, live, 5)

	// ... and after River's cleaner deleted them.
	tag, err := tb.db.Pool.Exec(ctx, "DELETE FROM "+tb.table("river_job")+" WHERE state IN ('completed', 'cancelled', 'discarded')")
	require.NoError(t, err)
	require.EqualValues(t, 4, tag.RowsAffected())
	require.Zero(t, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.table("river_job")))

	after, err := tb.store.Event(ctx, tb.db.Channel, id)
	require.NoError(t, err)
	// Everything but the data the handlers received, which went with
	// River's rows.
	for i := range before.Jobs {
		var data struct {
			ID   json.Number `json:"id"`
			Name string      `json:"name"`
		}
		require.NoError(t, json.Unmarshal(before.Jobs[i].Data, &data), "job %d", before.Jobs[i].ID)
		require.Equal(t, id, data.ID.String())
		require.Equal(t, "signup", data.Name)
		require.Nil(t, after.Jobs[i].Data, "job %d", after.Jobs[i].ID)
		before.Jobs[i].Data = nil
	}
	require.Equal(t, before, after, "the event's history is the same after the cleaner ran")

	got := byHandler(t, after)
	require.Equal(t, history.StateCompleted, got["handler_a"].State)
	require.Equal(t, 1, got["handler_a"].Attempt)
	require.JSONEq(t, `{"sent_to": "someone"}`, string(got["handler_a"].Output))
	require.Equal(t, history.StateCompleted, got["flaky"].State)
	require.Equal(t, 2, got["flaky"].Attempt)
	require.Equal(t, "transient", *got["flaky"].LastError)
	require.Equal(t, history.StateDiscarded, got["broken"].State)
	require.Equal(t, 2, got["broken"].Attempt)
	require.Equal(t, "always down", *got["broken"].LastError)
	require.Equal(t, history.StateCancelled, got["refuse"].State)
	require.Equal(t, 1, got["refuse"].Attempt)
	require.JSONEq(t, `{"valid": false}`, string(got["refuse"].Output))

	rows := tb.historyRows(t)
	require.Equal(t, live, rows, "the view is the same after the cleaner ran")
	var signupRows []historyRow
	for _, r := range rows {
		if r.EventID == unrouted {
			require.Equal(t, "unrouted", r.Outcome)
			require.Nil(t, r.Handler)
			require.Nil(t, r.JobID)
			require.Nil(t, r.State)
			require.NotNil(t, r.Reason)
			require.Equal(t, `no route for event name "nobody"`, *r.Reason)
			continue
		}
		require.Equal(t, id, r.EventID)
		signupRows = append(signupRows, r)
	}
	require.Len(t, signupRows, 4, "one row per job")
	type summary struct {
		handler, state string
		attempt        int
		lastError      string
		output         string
	}
	var sums []summary
	for _, r := range signupRows {
		require.Equal(t, "dispatched", r.Outcome)
		require.Nil(t, r.Reason)
		require.NotNil(t, r.Handler)
		require.NotNil(t, r.JobID)
		s := summary{handler: *r.Handler, state: *r.State, attempt: *r.Attempt, output: string(r.Output)}
		if r.LastError != nil {
			s.lastError = *r.LastError
		}
		sums = append(sums, s)
	}
	require.Equal(t, []summary{
		{"broken", "discarded", 2, "always down", ""},
		{"flaky", "completed", 2, "transient", ""},
		{"handler_a", "completed", 1, "", `{"sent_to": "someone"}`},
		{"refuse", "cancelled", 1, `JobCancelError: handler reported FAILURE for event ` + id + `: {"valid":false}`, `{"valid": false}`},
	}, sums)
}

func TestRecordedWhenCancelledOutsideWorker(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "report_requested", Kind: "nobody_works_this"})
	tb.startBridge(t, 0)

	id := tb.insertEvent(t, "report_requested")
	var jobID int64
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		ev, err := tb.store.Event(ctx, tb.db.Channel, id)
		if err != nil {
			return false, err.Error()
		}
		if len(ev.Jobs) != 1 {
			return false, fmt.Sprintf("%d jobs", len(ev.Jobs))
		}
		jobID = ev.Jobs[0].ID
		return ev.Jobs[0].State == "available", "job is " + ev.Jobs[0].State
	})
	require.Zero(t, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.table("notified_job")))

	// An insert-only client, as an operator's tool (or River UI) would use.
	client, err := river.NewClient(riverpgxv5.New(tb.db.Pool), &river.Config{Schema: tb.db.Schema, Logger: testLogger(t)})
	require.NoError(t, err)
	row, err := client.JobCancel(ctx, jobID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCancelled, row.State)

	var (
		channel, eventID, eventName, kind, state string
		attempt                                  int
		finalizedAt                              time.Time
	)
	require.NoError(t, tb.db.Pool.QueryRow(ctx, `SELECT channel, event_id, event_name, kind, state, attempt, finalized_at
		FROM `+tb.table("notified_job")+` WHERE job_id = $1`, jobID).
		Scan(&channel, &eventID, &eventName, &kind, &state, &attempt, &finalizedAt))
	require.Equal(t, tb.db.Channel, channel)
	require.Equal(t, id, eventID)
	require.Equal(t, "report_requested", eventName)
	require.Equal(t, "nobody_works_this", kind)
	require.Equal(t, history.StateCancelled, state)
	require.Equal(t, 0, attempt, "never worked")
	require.NotNil(t, row.FinalizedAt)
	require.True(t, row.FinalizedAt.Equal(finalizedAt), "recorded finalized_at %s, River's %s", finalizedAt, *row.FinalizedAt)

	// And the history shows it, with River's row gone.
	testdb.Exec(t, tb.db.Pool, "DELETE FROM "+tb.table("river_job"))
	ev, err := tb.store.Event(ctx, tb.db.Channel, id)
	require.NoError(t, err)
	require.Len(t, ev.Jobs, 1)
	require.Equal(t, jobID, ev.Jobs[0].ID)
	require.Equal(t, history.StateCancelled, ev.Jobs[0].State)
	require.Nil(t, ev.Jobs[0].AttemptedAt)
}

// deadIDs returns the ids of jobs, in order.
func deadIDs(js []history.Job) []int64 {
	ids := make([]int64, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.route(t, routes.Route{Event: "discard_me", Kind: kindBroken{}.Kind(), MaxAttempts: 1})
	tb.route(t, routes.Route{Event: "cancel_me", Kind: kindRefuse{}.Kind()})
	tb.route(t, routes.Route{Event: "fine", Kind: kindA{}.Kind()})
	tb.startBridge(t, 0)
	client := tb.startWorkers(t, func(w *river.Workers) {
		require.NoError(t, jobs.Handle[kindBroken](w, func(_ context.Context, ev jobs.Event) (jobs.Result, error) {
			if ev.Job.Attempt > 1 { // only after a manual retry
				return jobs.Success(nil), nil
			}
			return jobs.Result{}, fmt.Errorf("cannot handle %s", ev.ID)
		}))
		require.NoError(t, jobs.Handle[kindRefuse](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Failure("refused"), nil
		}))
		require.NoError(t, jobs.Handle[kindA](w, func(context.Context, jobs.Event) (jobs.Result, error) {
			return jobs.Success(nil), nil
		}))
	})

	// One event at a time, so they finalize in this order.
	jobOf := map[string]history.Job{}
	var order []string
	for _, name := range []string{"discard_me", "fine", "cancel_me", "discard_me", "fine"} {
		id := tb.insertEvent(t, name)
		ev := tb.waitEvent(t, id, 1)
		jobOf[id] = ev.Jobs[0]
		order = append(order, id)
	}
	d1, c1, d2 := jobOf[order[0]], jobOf[order[2]], jobOf[order[3]]
	require.Equal(t, history.StateDiscarded, d1.State)
	require.Equal(t, history.StateCancelled, c1.State)
	require.Equal(t, history.StateDiscarded, d2.State)

	list := func(f history.DeadLetterFilter) []history.Job {
		t.Helper()
		if f.Channel == "" {
			f.Channel = tb.db.Channel
		}
		js, err := tb.store.DeadLetters(ctx, f)
		require.NoError(t, err)
		if len(f.Handlers) == 0 && len(f.JobIDs) == 0 && f.Limit == 0 {
			n, err := tb.store.CountDeadLetters(ctx, f.Channel, f.Since)
			require.NoError(t, err)
			require.Equal(t, int64(len(js)), n, "CountDeadLetters counts what DeadLetters lists")
		}
		return js
	}

	all := list(history.DeadLetterFilter{})
	require.Equal(t, []int64{d2.ID, c1.ID, d1.ID}, deadIDs(all), "only dead jobs, newest first")
	require.Equal(t, order[3], all[0].EventID)
	require.Equal(t, "discard_me", all[0].EventName)
	require.Equal(t, "broken", all[0].Handler)
	require.Equal(t, history.StateDiscarded, all[0].State)
	require.Equal(t, "cannot handle "+order[3], *all[0].LastError)
	require.Equal(t, "refuse", all[1].Handler)
	require.JSONEq(t, `"refused"`, string(all[1].Output))

	require.Equal(t, []int64{c1.ID}, deadIDs(list(history.DeadLetterFilter{Handlers: []string{"refuse"}})))
	require.Equal(t, []int64{d2.ID, d1.ID}, deadIDs(list(history.DeadLetterFilter{Handlers: []string{"broken"}})))
	require.Equal(t, []int64{d2.ID, c1.ID, d1.ID}, deadIDs(list(history.DeadLetterFilter{Handlers: []string{"broken", "refuse", "handler_a"}})))
	require.Empty(t, list(history.DeadLetterFilter{Handlers: []string{"handler_a"}}))
	require.Equal(t, []int64{d2.ID, c1.ID}, deadIDs(list(history.DeadLetterFilter{Since: *c1.FinalizedAt})), "since is inclusive")
	require.Empty(t, list(history.DeadLetterFilter{Since: d2.FinalizedAt.Add(time.Millisecond)}))
	require.Equal(t, []int64{d1.ID}, deadIDs(list(history.DeadLetterFilter{JobIDs: []int64{d1.ID, jobOf[order[1]].ID}})))
	require.Equal(t, []int64{d2.ID, c1.ID}, deadIDs(list(history.DeadLetterFilter{Limit: 2})))
	require.Equal(t, []int64{d1.ID}, deadIDs(list(history.DeadLetterFilter{Handlers: []string{"broken"}, Since: *d1.FinalizedAt, Limit: 3, JobIDs: []int64{d1.ID, c1.ID}})))
	require.Empty(t, list(history.DeadLetterFilter{Channel: "some_other_channel"}))

	// A newer job for the same event and handler (a replay or a manual
	// retry) takes d1 off the list while it waits; one of another handler
	// for d2's event does not take d2 off.
	insertNewer := func(id, kind string) int64 {
		t.Helper()
		meta, err := json.Marshal(map[string]jobs.Source{jobs.MetadataKey: {EventID: id, EventName: "discard_me", Channel: tb.db.Channel}})
		require.NoError(t, err)
		var args river.JobArgs
		switch kind {
		case "broken":
			args = jobs.Args[kindBroken]{Payload: jobs.Payload{EventID: id, EventName: "discard_me", Channel: tb.db.Channel}}
		default:
			args = jobs.Args[kindA]{Payload: jobs.Payload{EventID: id, EventName: "discard_me", Channel: tb.db.Channel}}
		}
		// Queue "parked" has no worker: the job stays available.
		res, err := client.Insert(ctx, args, &river.InsertOpts{Queue: "parked", Metadata: meta})
		require.NoError(t, err)
		return res.Job.ID
	}
	newer := insertNewer(order[0], "broken")
	insertNewer(order[3], "handler_a")
	require.Equal(t, []int64{d2.ID, c1.ID}, deadIDs(list(history.DeadLetterFilter{})))
	require.Empty(t, list(history.DeadLetterFilter{JobIDs: []int64{d1.ID}}))

	// Once the newer job is cancelled it is the dead letter.
	_, err := client.JobCancel(ctx, newer)
	require.NoError(t, err)
	require.Equal(t, []int64{newer, d2.ID, c1.ID}, deadIDs(list(history.DeadLetterFilter{})))

	// A dead letter retried in place (River's JobRetry) leaves the list at
	// once, and stays off it once it completes.
	_, err = client.JobRetry(ctx, d2.ID)
	require.NoError(t, err)
	require.Equal(t, []int64{newer, c1.ID}, deadIDs(list(history.DeadLetterFilter{})))
	var retried history.Job
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		ev, err := tb.store.Event(ctx, tb.db.Channel, order[3])
		require.NoError(t, err)
		retried = byHandler(t, ev)["broken"]
		return isFinal(retried.State), "the retried job is " + retried.State
	})
	require.Equal(t, d2.ID, retried.ID)
	require.Equal(t, history.StateCompleted, retried.State)
	require.Equal(t, 2, retried.Attempt)
	require.Equal(t, []int64{newer, c1.ID}, deadIDs(list(history.DeadLetterFilter{})))

	// River's cleaner changes none of it: the recorded outcomes (d1's, the
	// newer job's, and d2's second one) keep d1 and d2 off the list.
	testdb.Exec(t, tb.db.Pool, "DELETE FROM "+tb.table("river_job")+" WHERE finalized_at IS NOT NULL")
	require.Equal(t, 1, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.table("river_job")), "the parked handler_a job is live")
	require.Equal(t, []int64{newer, c1.ID}, deadIDs(list(history.DeadLetterFilter{})))
	ev, err := tb.store.Event(ctx, tb.db.Channel, order[3])
	require.NoError(t, err)
	require.Len(t, ev.Jobs, 2, "d2 and the parked handler_a job")
	require.Equal(t, d2.ID, ev.Jobs[0].ID)
	require.Equal(t, history.StateCompleted, ev.Jobs[0].State, "the outcome recorded when the retried job completed")
	require.Equal(t, 2, ev.Jobs[0].Attempt)
	require.Equal(t, 2, ev.Jobs[0].MaxAttempts, "JobRetry gave the exhausted job one more attempt")
}
