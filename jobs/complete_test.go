package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
)

// handledIn makes the table a handler writes to in its transaction.
func handledIn(t *testing.T, db *testdb.DB) string {
	t.Helper()
	table := pgx.Identifier{db.Schema, "handled"}.Sanitize()
	_, err := db.Pool.Exec(context.Background(), "CREATE TABLE "+table+" (job_id bigint PRIMARY KEY)")
	require.NoError(t, err)
	return table
}

// TestCompleteTxCommitsWithTheHandlersWrites: the job is completed, with its
// output, by the commit of the handler's transaction, together with what
// the handler wrote in it, before the handler returns.
func TestCompleteTxCommitsWithTheHandlersWrites(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	table := handledIn(t, db)
	seen := make(chan string, 1) // the job's state once the handler committed
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return jobs.Result{}, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", ev.Job.ID); err != nil {
			return jobs.Result{}, err
		}
		if err := jobs.CompleteTx(ctx, tx, ev, map[string]string{"sent_to": "a@b.c"}); err != nil {
			return jobs.Result{}, err
		}
		if err := tx.Commit(ctx); err != nil {
			return jobs.Result{}, err
		}
		var state string
		if err := db.Pool.QueryRow(ctx, "SELECT state::text FROM "+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+" WHERE id = $1", ev.Job.ID).Scan(&state); err != nil {
			return jobs.Result{}, err
		}
		seen <- state
		return jobs.Success(nil), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	require.Equal(t, "completed", <-seen, "completed by the handler's commit")
	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Equal(t, 1, row.Attempt)
	require.JSONEq(t, `{"sent_to":"a@b.c"}`, output(t, db, id))
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	require.Equal(t, 1, n)
}

// TestCompleteTxRollsBackWithTheTransaction: a completion in a transaction
// that rolls back is undone with the handler's writes, and the job ends as
// the handler's result says: here, an error, retried.
func TestCompleteTxRollsBackWithTheTransaction(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	table := handledIn(t, db)
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		if ev.Job.Attempt > 1 {
			return jobs.Success(nil), nil
		}
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return jobs.Result{}, err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1)", ev.Job.ID); err != nil {
			return jobs.Result{}, err
		}
		if err := jobs.CompleteTx(ctx, tx, ev, nil); err != nil {
			return jobs.Result{}, err
		}
		if err := tx.Rollback(ctx); err != nil {
			return jobs.Result{}, err
		}
		return jobs.Result{}, errors.New("the charge failed after all")
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Equal(t, 2, row.Attempt, "the first attempt's completion was rolled back and the job retried")
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, "the charge failed after all")
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
	require.Zero(t, n)
}

// TestCompleteTxNeedsARunningJob: an event without its job, or one whose
// job is not running (outside a handler), is a clear error.
func TestCompleteTxNeedsARunningJob(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()

	err = jobs.CompleteTx(ctx, tx, jobs.Event{ID: "1"}, nil)
	require.ErrorContains(t, err, "the event has no job; call it from a handler")

	done := jobs.Event{ID: "2", Job: &rivertype.JobRow{ID: 7, Kind: "send_welcome", State: rivertype.JobStateCompleted}}
	err = jobs.CompleteTx(ctx, tx, done, nil)
	require.ErrorContains(t, err, "complete job 7 (send_welcome) of event 2 in the handler's transaction")
	require.ErrorContains(t, err, "job must be running")
}

// stateProbe is a worker middleware that reads each job's state in the
// database as soon as its handler returns, before River's completer is
// given the result: "running" unless the handler completed the job itself.
type stateProbe struct {
	river.MiddlewareDefaults
	db   *testdb.DB
	seen chan probed
}

type probed struct {
	job   int64
	state string
}

func newStateProbe(db *testdb.DB) *stateProbe {
	return &stateProbe{db: db, seen: make(chan probed, 10)}
}

func (p *stateProbe) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	err := doInner(ctx)
	var state string
	if qerr := p.db.Pool.QueryRow(ctx, "SELECT state::text FROM "+pgx.Identifier{p.db.Schema, "river_job"}.Sanitize()+" WHERE id = $1", job.ID).Scan(&state); qerr != nil {
		state = qerr.Error()
	}
	p.seen <- probed{job: job.ID, state: state}
	return err
}

// next returns the state the probe read after the next handler returned.
func (p *stateProbe) next(t *testing.T) probed {
	t.Helper()
	select {
	case got := <-p.seen:
		return got
	case <-time.After(waitTimeout):
		t.Fatal("no handler returned")
		return probed{}
	}
}

// TestCompleteNowCompletesBeforeTheHandlerReturns: a handler that calls
// CompleteNow has its job completed, with its output, when it returns; one
// that does not leaves it running for River's completer.
func TestCompleteNowCompletesBeforeTheHandlerReturns(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		if err := jobs.CompleteNow(ctx, ev, map[string]string{"sent_to": "a@b.c"}); err != nil {
			return jobs.Result{}, err
		}
		return jobs.Success(nil), nil
	}))
	require.NoError(t, jobs.Handle[auditSignup](workers, func(context.Context, jobs.Event) (jobs.Result, error) {
		return jobs.Success(nil), nil
	}))
	probe := newStateProbe(db)
	client := startClient(t, db, workers, probe)

	id := insert[sendWelcome](t, client, 3)
	require.Equal(t, probed{job: id, state: "completed"}, probe.next(t))
	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Equal(t, 1, row.Attempt)
	require.JSONEq(t, `{"sent_to":"a@b.c"}`, output(t, db, id))

	other := insert[auditSignup](t, client, 3)
	require.Equal(t, probed{job: other, state: "running"}, probe.next(t), "without it, River's completer completes the job after the handler returns")
	waitState(t, client, other, rivertype.JobStateCompleted)
}

// TestCompleteNowNeedsARiverWorker: outside a River worker there is no
// client to complete the job with: a clear error.
func TestCompleteNowNeedsARiverWorker(t *testing.T) {
	t.Parallel()
	err := jobs.CompleteNow(context.Background(), jobs.Event{ID: "1", Job: &rivertype.JobRow{ID: 1, State: rivertype.JobStateRunning}}, nil)
	require.ErrorContains(t, err, "jobs.CompleteNow: ")
	require.ErrorContains(t, err, "client")
}
