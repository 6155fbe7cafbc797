package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
)

// Handler kinds used by the tests. Each is an empty struct with a value
// Kind method, as the package documents.
type sendWelcome struct{}

func (sendWelcome) Kind() string { return "send_welcome" }

type auditSignup struct{}

func (auditSignup) Kind() string { return "audit_signup" }

type emptyKind struct{}

func (emptyKind) Kind() string { return "" }

// immediateRetry retries a failed job at once, so retry tests need not wait
// for River's exponential backoff.
type immediateRetry struct{}

func (immediateRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

const waitTimeout = 15 * time.Second

// samplePayload is the payload every test job carries.
func samplePayload() jobs.Payload {
	return jobs.Payload{
		EventID:   "1",
		EventName: "user_signed_up",
		Channel:   "events",
		Data:      json.RawMessage(`{"id":1,"email":"a@b.c"}`),
	}
}

// startClient starts a River client working the default queue in the test's
// schema with the given workers (and middleware), and stops it when the
// test ends.
func startClient(t *testing.T, db *testdb.DB, workers *river.Workers, middleware ...rivertype.Middleware) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Middleware:        middleware,
		Schema:            db.Schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       immediateRetry{},
		TestOnly:          true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			t.Logf("stop river client: %v", err)
		}
	})
	return client
}

// insert inserts one job of kind K with the sample payload.
func insert[K jobs.Kind](t *testing.T, client *river.Client[pgx.Tx], maxAttempts int) int64 {
	t.Helper()
	res, err := client.Insert(context.Background(), jobs.Args[K]{Payload: samplePayload()}, &river.InsertOpts{MaxAttempts: maxAttempts})
	require.NoError(t, err)
	return res.Job.ID
}

// waitState waits until the job is in state and returns its row.
func waitState(t *testing.T, client *river.Client[pgx.Tx], id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var row *rivertype.JobRow
	testdb.WaitFor(t, waitTimeout, func() (bool, string) {
		j, err := client.JobGet(context.Background(), id)
		if err != nil {
			return false, fmt.Sprintf("get job %d: %v", id, err)
		}
		row = j
		return j.State == state, fmt.Sprintf("job %d is %s (attempt %d, errors %v), want %s", id, j.State, j.Attempt, j.Errors, state)
	})
	return row
}

// output returns the job's metadata->'output' as JSON text, or "" when absent.
func output(t *testing.T, db *testdb.DB, id int64) string {
	t.Helper()
	var out *string
	err := db.Pool.QueryRow(context.Background(),
		"SELECT (metadata->'output')::text FROM "+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+" WHERE id = $1", id).Scan(&out)
	require.NoError(t, err)
	if out == nil {
		return ""
	}
	return *out
}

func TestHandlerReceivesEvent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	type user struct {
		ID    int    `json:"id"`
		Email string `json:"email"`
	}
	type seen struct {
		ev      jobs.Event
		user    user
		decoErr error
	}
	got := make(chan seen, 1)
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		var u user
		err := ev.Decode(&u)
		got <- seen{ev: ev, user: u, decoErr: err}
		return jobs.Success(nil), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	var s seen
	select {
	case s = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("handler was not called")
	}
	require.Equal(t, "1", s.ev.ID)
	require.Equal(t, "user_signed_up", s.ev.Name)
	require.Equal(t, "events", s.ev.Channel)
	require.JSONEq(t, `{"id":1,"email":"a@b.c"}`, string(s.ev.Data))
	require.NotNil(t, s.ev.Job)
	require.Equal(t, id, s.ev.Job.ID)
	require.Equal(t, "send_welcome", s.ev.Job.Kind)
	require.Equal(t, 1, s.ev.Job.Attempt)
	require.NoError(t, s.decoErr)
	require.Equal(t, user{ID: 1, Email: "a@b.c"}, s.user)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Empty(t, row.Errors)
	require.Empty(t, output(t, db, id), "Success(nil) records no output")
}

func TestEventDecodeError(t *testing.T) {
	t.Parallel()
	ev := jobs.Event{ID: "42", Name: "user_signed_up", Data: json.RawMessage(`{"id": "not a number"}`)}
	var v struct {
		ID int `json:"id"`
	}
	err := ev.Decode(&v)
	require.Error(t, err)
	require.Contains(t, err.Error(), "decode event 42 (user_signed_up)")
	var typeErr *json.UnmarshalTypeError
	require.ErrorAs(t, err, &typeErr, "the json error is wrapped")

	err = jobs.Event{ID: "43", Name: "x", Data: json.RawMessage(`not json`)}.Decode(&v)
	require.ErrorContains(t, err, "decode event 43 (x)")
}

func TestSuccessCompletesWithOutput(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Success(map[string]any{"sent_to": "a@b.c", "n": 2}), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Equal(t, 1, row.Attempt)
	require.Empty(t, row.Errors)
	require.JSONEq(t, `{"sent_to":"a@b.c","n":2}`, output(t, db, id))
	require.JSONEq(t, `{"sent_to":"a@b.c","n":2}`, string(row.Output()))
}

func TestZeroResultCompletes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Result{}, nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Empty(t, row.Errors)
	require.Empty(t, output(t, db, id))
}

func TestErrorIsRetried(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	var calls atomic.Int32
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		n := calls.Add(1)
		if ev.Job.Attempt == 1 {
			return jobs.Result{}, errors.New("smtp is down")
		}
		return jobs.Success(map[string]int32{"call": n}), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 3)

	row := waitState(t, client, id, rivertype.JobStateCompleted)
	require.Equal(t, 2, row.Attempt, "the job ran a second time")
	require.EqualValues(t, 2, calls.Load())
	require.Len(t, row.Errors, 1)
	require.Equal(t, 1, row.Errors[0].Attempt)
	require.Contains(t, row.Errors[0].Error, "smtp is down")
	require.JSONEq(t, `{"call":2}`, output(t, db, id))
}

func TestErrorExhaustsAttempts(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	var calls atomic.Int32
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		calls.Add(1)
		return jobs.Result{}, fmt.Errorf("attempt %d failed", ev.Job.Attempt)
	}))
	client := startClient(t, db, workers)

	t.Run("max attempts 1 discards at once", func(t *testing.T) {
		id := insert[sendWelcome](t, client, 1)
		row := waitState(t, client, id, rivertype.JobStateDiscarded)
		require.Equal(t, 1, row.Attempt)
		require.Len(t, row.Errors, 1)
		require.Contains(t, row.Errors[0].Error, "attempt 1 failed")
		require.NotNil(t, row.FinalizedAt)
	})

	t.Run("max attempts 3 retries then discards", func(t *testing.T) {
		id := insert[sendWelcome](t, client, 3)
		row := waitState(t, client, id, rivertype.JobStateDiscarded)
		require.Equal(t, 3, row.Attempt)
		require.Len(t, row.Errors, 3)
		for i, e := range row.Errors {
			require.Equal(t, i+1, e.Attempt)
			require.Contains(t, e.Error, fmt.Sprintf("attempt %d failed", i+1))
		}
	})
	require.EqualValues(t, 4, calls.Load())
}

func TestFailureCancelsWithoutRetry(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	var calls atomic.Int32
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		calls.Add(1)
		return jobs.Failure(map[string]string{"reason": "address bounced"}), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 5)

	row := waitState(t, client, id, rivertype.JobStateCancelled)
	require.Equal(t, 1, row.Attempt, "a FAILURE is not retried")
	require.EqualValues(t, 1, calls.Load())
	require.JSONEq(t, `{"reason":"address bounced"}`, output(t, db, id))
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, "handler reported FAILURE")
	require.Contains(t, row.Errors[0].Error, "for event 1")
	require.Contains(t, row.Errors[0].Error, `{"reason":"address bounced"}`)
}

func TestFailureWithoutPayload(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Failure(nil), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 5)

	row := waitState(t, client, id, rivertype.JobStateCancelled)
	require.Equal(t, 1, row.Attempt)
	require.Empty(t, output(t, db, id))
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, "handler reported FAILURE for event 1")
}

func TestPermanentCancelsAtOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	var calls atomic.Int32
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		calls.Add(1)
		var v struct {
			Email int `json:"email"`
		}
		if err := ev.Decode(&v); err != nil {
			return jobs.Result{}, jobs.Permanent(err)
		}
		return jobs.Success(nil), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 5)

	row := waitState(t, client, id, rivertype.JobStateCancelled)
	require.Equal(t, 1, row.Attempt)
	require.EqualValues(t, 1, calls.Load())
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, "decode event 1 (user_signed_up)")
}

func TestPermanentWrapsError(t *testing.T) {
	t.Parallel()
	cause := errors.New("no such user")
	err := jobs.Permanent(cause)
	require.ErrorIs(t, err, cause)
	require.Contains(t, err.Error(), "no such user")
}

func TestUnknownStatusCancels(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Result{Status: "MAYBE"}, nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 5)

	row := waitState(t, client, id, rivertype.JobStateCancelled)
	require.Equal(t, 1, row.Attempt)
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, `handler send_welcome returned unknown status "MAYBE" for event 1`)
}

func TestUnrecordableOutputIsRetried(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		return jobs.Success(map[string]any{"ch": make(chan int)}), nil
	}))
	client := startClient(t, db, workers)
	id := insert[sendWelcome](t, client, 1)

	row := waitState(t, client, id, rivertype.JobStateDiscarded)
	require.Len(t, row.Errors, 1)
	require.Contains(t, row.Errors[0].Error, "record output of send_welcome for event 1")
}

func TestHandlersByKind(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	got := make(chan string, 2)
	workers := river.NewWorkers()
	require.NoError(t, jobs.Handle[sendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		got <- "welcome:" + ev.Job.Kind
		return jobs.Success(nil), nil
	}))
	require.NoError(t, jobs.Handle[auditSignup](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		got <- "audit:" + ev.Job.Kind
		return jobs.Success(nil), nil
	}))
	client := startClient(t, db, workers)
	a := insert[sendWelcome](t, client, 1)
	b := insert[auditSignup](t, client, 1)
	waitState(t, client, a, rivertype.JobStateCompleted)
	waitState(t, client, b, rivertype.JobStateCompleted)
	require.ElementsMatch(t, []string{"welcome:send_welcome", "audit:audit_signup"}, []string{<-got, <-got})
}

func TestHandleNilFunc(t *testing.T) {
	t.Parallel()
	err := jobs.Handle[sendWelcome](river.NewWorkers(), nil)
	require.EqualError(t, err, "jobs.Handle: handler is nil")
}

func TestHandleEmptyKind(t *testing.T) {
	t.Parallel()
	err := jobs.Handle[emptyKind](river.NewWorkers(), func(context.Context, jobs.Event) (jobs.Result, error) {
		return jobs.Success(nil), nil
	})
	require.EqualError(t, err, "jobs.Handle: kind is empty")
}

func TestHandleTwice(t *testing.T) {
	t.Parallel()
	workers := river.NewWorkers()
	fn := func(context.Context, jobs.Event) (jobs.Result, error) { return jobs.Success(nil), nil }
	require.NoError(t, jobs.Handle[sendWelcome](workers, fn))
	err := jobs.Handle[sendWelcome](workers, fn)
	require.Error(t, err)
	require.Contains(t, err.Error(), "register handler send_welcome")
	require.Contains(t, err.Error(), "already registered")
	// Another kind still registers.
	require.NoError(t, jobs.Handle[auditSignup](workers, fn))
}

func TestArgsKind(t *testing.T) {
	t.Parallel()
	require.Equal(t, "send_welcome", jobs.Args[sendWelcome]{}.Kind())
	require.Equal(t, "audit_signup", jobs.Args[auditSignup]{Payload: samplePayload()}.Kind())
}

func TestArgsJSON(t *testing.T) {
	t.Parallel()
	in := jobs.Args[sendWelcome]{Payload: samplePayload()}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"event_id":"1","event_name":"user_signed_up","channel":"events","data":{"id":1,"email":"a@b.c"}}`, string(b))

	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &fields))
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{"event_id", "event_name", "channel", "data"}, keys)

	var out jobs.Args[sendWelcome]
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in.EventID, out.EventID)
	require.Equal(t, in.EventName, out.EventName)
	require.Equal(t, in.Channel, out.Channel)
	require.JSONEq(t, string(in.Data), string(out.Data))

	// A Payload marshals the same as Args: the bridge inserts Payload-shaped args.
	pb, err := json.Marshal(samplePayload())
	require.NoError(t, err)
	require.JSONEq(t, string(b), string(pb))
}

func TestInsertedArgsInDatabase(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	// No client is started: the job stays available and its args are as inserted.
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Schema: db.Schema, TestOnly: true})
	require.NoError(t, err)
	id := insert[sendWelcome](t, client, 2)

	var kind, args string
	var maxAttempts int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT kind, args::text, max_attempts FROM "+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+" WHERE id = $1", id).
		Scan(&kind, &args, &maxAttempts))
	require.Equal(t, "send_welcome", kind)
	require.Equal(t, 2, maxAttempts)
	require.JSONEq(t, `{"event_id":"1","event_name":"user_signed_up","channel":"events","data":{"id":1,"email":"a@b.c"}}`, args)
}

func TestMetadataSource(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(map[string]jobs.Source{jobs.MetadataKey: {EventID: "1", EventName: "n", Channel: "c"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"notified":{"event_id":"1","event_name":"n","channel":"c"}}`, string(b))
}
