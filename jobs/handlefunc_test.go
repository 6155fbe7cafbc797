package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
)

func succeed(context.Context, jobs.Event) (jobs.Result, error) { return jobs.Success(nil), nil }

func TestHandleFuncReceivesEvent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	got := make(chan jobs.Event, 1)
	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, "send_welcome", func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		got <- ev
		return jobs.Success(ev.Data), nil
	}))
	client := startClient(t, db, workers)
	// The bridge inserts the same args whatever the worker's Go types: a
	// job of Handle's args type is one of HandleFunc's kind.
	id := insert[sendWelcome](t, client, 3)

	var ev jobs.Event
	select {
	case ev = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("handler was not called")
	}
	require.Equal(t, "1", ev.ID)
	require.Equal(t, "user_signed_up", ev.Name)
	require.Equal(t, "events", ev.Channel)
	require.JSONEq(t, `{"id":1,"email":"a@b.c"}`, string(ev.Data))
	require.Equal(t, id, ev.Job.ID)
	require.Equal(t, "send_welcome", ev.Job.Kind)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.JSONEq(t, `{"id":1,"email":"a@b.c"}`, string(row.Output()))
}

// HandleFunc shares Handle's outcomes: one check of each kind of result.
func TestHandleFuncOutcomes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, "send_welcome", func(context.Context, jobs.Event) (jobs.Result, error) {
		return jobs.Failure(map[string]string{"reason": "no email"}), nil
	}))
	require.NoError(t, jobs.HandleFunc(workers, "audit_signup", func(context.Context, jobs.Event) (jobs.Result, error) {
		return jobs.Result{}, context.DeadlineExceeded
	}))
	client := startClient(t, db, workers)

	failed := waitState(t, client, insert[sendWelcome](t, client, 5), rivertype.JobStateCancelled)
	require.Equal(t, 1, failed.Attempt, "a FAILURE is not retried")
	require.Contains(t, failed.Errors[0].Error, `handler reported FAILURE for event 1: {"reason":"no email"}`)
	require.JSONEq(t, `{"reason":"no email"}`, string(failed.Output()))

	retried := waitState(t, client, insert[auditSignup](t, client, 2), rivertype.JobStateDiscarded)
	require.Equal(t, 2, retried.Attempt, "an error is retried up to max attempts")
	require.Contains(t, retried.Errors[1].Error, "context deadline exceeded")
}

func TestHandleFuncErrors(t *testing.T) {
	t.Parallel()
	require.EqualError(t, jobs.HandleFunc(nil, "send_welcome", succeed),
		"jobs.HandleFunc: workers is nil: pass the river.Workers the client will be given")
	require.EqualError(t, jobs.HandleFunc(river.NewWorkers(), "", succeed),
		"jobs.HandleFunc: kind is empty: name the handler kind that routes refer to")
	require.EqualError(t, jobs.HandleFunc(river.NewWorkers(), "send_welcome", nil),
		`jobs.HandleFunc: handler for kind "send_welcome" is nil`)
}

func TestHandleFuncTwice(t *testing.T) {
	t.Parallel()
	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, "send_welcome", succeed))
	require.EqualError(t, jobs.HandleFunc(workers, "send_welcome", succeed),
		`register handler send_welcome: worker for kind "send_welcome" is already registered`)
	// Handle and HandleFunc share River's registry, in both orders.
	require.ErrorContains(t, jobs.Handle[sendWelcome](workers, succeed), "already registered")
	require.NoError(t, jobs.Handle[auditSignup](workers, succeed))
	require.ErrorContains(t, jobs.HandleFunc(workers, "audit_signup", succeed), "already registered")
	// Another kind still registers.
	require.NoError(t, jobs.HandleFunc(workers, "charge_order", succeed))
}

// River refuses a badly spelled kind when the client is created, naming it.
func TestHandleFuncKindCheckedByClient(t *testing.T) {
	t.Parallel()
	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, "send welcome", succeed))
	_, err := river.NewClient(riverpgxv5.New(nil), &river.Config{Workers: workers,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}}})
	require.ErrorContains(t, err, `job kind "send welcome" should match regex`)
}
