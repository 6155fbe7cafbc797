// Package jobs is what a worker process imports to run handlers for the jobs
// notified-bridge enqueues.
//
// The bridge turns each event into one River job per route; the job's kind is
// the route's handler kind and its args are a [Payload]. A handler is an
// ordinary River worker. [On] registers one for a route's kind and declares
// the route, so one call says which event runs which handler, as the Python
// listener's register_handler did; call it at every worker start:
//
//	workers := river.NewWorkers()
//	err := jobs.On(ctx, workers, routes.NewStore(pool, "notified"),
//		routes.Route{Event: "my_event", Kind: "my_handler"},
//		func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
//			return jobs.Success(ev.Data), nil
//		})
//
// [HandleFunc] registers a handler for a kind given by name, without
// declaring a route. [Handle] registers one typed by a small kind type:
//
//	type SendWelcome struct{}
//
//	func (SendWelcome) Kind() string { return "send_welcome" }
//
//	workers := river.NewWorkers()
//	jobs.Handle[SendWelcome](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
//		var user struct{ Email string `json:"email"` }
//		if err := ev.Decode(&user); err != nil {
//			return jobs.Result{}, jobs.Permanent(err)
//		}
//		return jobs.Success(map[string]string{"sent_to": user.Email}), nil
//	})
//
// The handler's outcome follows the result model of the Python listener,
// with retries added: [Success] completes the job and records its payload as
// the job's output; [Failure] cancels the job without retrying it and records
// its payload; a returned error is retried with River's backoff until the
// route's max attempts, after which River discards the job; an error wrapped
// with [Permanent] cancels the job at once.
//
// River's caveat applies: a client that may be elected leader rescues stuck
// jobs and discards those whose kind it does not know, so every
// leader-eligible worker process must register every kind that it may see in
// its queues (or run with LeaderElectionDisabled).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Payload is the args of every job the bridge inserts.
type Payload struct {
	// EventID is the event's id as text, as it arrived in the notification.
	EventID string `json:"event_id"`
	// EventName is the value of the event's name column.
	EventName string `json:"event_name"`
	// Channel is the channel the event was announced on.
	Channel string `json:"channel"`
	// Data is the whole event row as a JSON object, column name to value.
	Data json.RawMessage `json:"data"`
}

// MetadataKey is the key under which jobs' River metadata names their source
// event, as {"event_id": ..., "event_name": ..., "channel": ...}.
const MetadataKey = "notified"

// Source is the value stored under MetadataKey in a job's metadata.
type Source struct {
	EventID   string `json:"event_id"`
	EventName string `json:"event_name"`
	Channel   string `json:"channel"`
	// ReplayID is the replay that created the job (notified_replay.id), or 0
	// for a job created when the event was dispatched.
	ReplayID int64 `json:"replay_id,omitempty"`
	// Lane is the key of the job's lane when its route is ordered (as JSON
	// text: 42, "A-17"): the jobs of one kind with the same lane run one at a
	// time, in the order of their events. Empty for a job that is not
	// ordered.
	Lane string `json:"lane,omitempty"`
	// Webhook is where a webhook route's job delivers the event; nil for
	// other jobs.
	Webhook *WebhookTarget `json:"webhook,omitempty"`
}

// WebhookTarget is where a webhook job delivers its event: the route's URL
// and the name of the worker's environment variable that holds the signing
// secret, as they were when the job was made.
type WebhookTarget struct {
	URL       string `json:"url"`
	SecretEnv string `json:"secret_env,omitempty"`
}

// Kind names a handler kind. Implement it with a value receiver on an empty
// struct type: River calls it on the zero value.
type Kind interface {
	Kind() string
}

// Args is the River job args type for handler kind K. Its JSON is a Payload.
type Args[K Kind] struct {
	Payload
}

// Kind returns the handler kind of K.
func (Args[K]) Kind() string {
	var k K
	return k.Kind()
}

// Event is what a handler receives: the event the job was made for.
type Event struct {
	// ID is the event's id as text.
	ID string
	// Name is the event's name.
	Name string
	// Channel is the channel the event was announced on.
	Channel string
	// Data is the event row as a JSON object.
	Data json.RawMessage
	// Job is the River job being worked, for its id, attempt and metadata.
	Job *rivertype.JobRow
}

// Decode unmarshals the event row into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode event %s (%s): %w", e.ID, e.Name, err)
	}
	return nil
}

// Status is a handler's verdict, as in the Python listener's HandlerResult.
type Status string

// The two statuses a handler can report.
const (
	StatusSuccess Status = "SUCCESS"
	StatusFailure Status = "FAILURE"
)

// Result is what a handler returns: a status and a payload that is recorded
// as the job's output (River's metadata key "output").
type Result struct {
	Status  Status
	Payload any
}

// Success is a result that completes the job with payload as its output.
// A nil payload records no output.
func Success(payload any) Result { return Result{Status: StatusSuccess, Payload: payload} }

// Failure is a result that cancels the job without retrying it, with payload
// recorded as its output.
func Failure(payload any) Result { return Result{Status: StatusFailure, Payload: payload} }

// Permanent marks err as not worth retrying: the job is cancelled at once.
func Permanent(err error) error {
	return river.JobCancel(err)
}

// HandlerFunc handles one event. Return a Result for a verdict, or an error to
// have the job retried.
type HandlerFunc func(ctx context.Context, ev Event) (Result, error)

// Handle registers fn as the River worker for handler kind K.
// It fails when a worker for the kind is registered already.
func Handle[K Kind](workers *river.Workers, fn HandlerFunc) error {
	if fn == nil {
		return errors.New("jobs.Handle: handler is nil")
	}
	var k K
	if k.Kind() == "" {
		return errors.New("jobs.Handle: kind is empty")
	}
	if err := river.AddWorkerSafely(workers, &worker[K]{fn: fn}); err != nil {
		return fmt.Errorf("register handler %s: %w", k.Kind(), err)
	}
	return nil
}

// worker adapts a HandlerFunc to River's Worker interface.
type worker[K Kind] struct {
	river.WorkerDefaults[Args[K]]
	fn HandlerFunc
}

// ErrFailure is wrapped by the error a cancelled job records when its handler
// reported StatusFailure.
var ErrFailure = errors.New("handler reported FAILURE")

func (w *worker[K]) Work(ctx context.Context, job *river.Job[Args[K]]) error {
	return work(ctx, w.fn, job.Args.Payload, job.JobRow)
}

// work runs fn for the job row, whose args are p, and turns its result into
// the job's outcome: the one outcome model of Handle and HandleFunc.
func work(ctx context.Context, fn HandlerFunc, p Payload, row *rivertype.JobRow) error {
	ev := Event{
		ID:      p.EventID,
		Name:    p.EventName,
		Channel: p.Channel,
		Data:    p.Data,
		Job:     row,
	}
	res, err := fn(ctx, ev)
	if err != nil {
		return err
	}
	if res.Payload != nil {
		if err := river.RecordOutput(ctx, res.Payload); err != nil {
			return fmt.Errorf("record output of %s for event %s: %w", row.Kind, ev.ID, err)
		}
	}
	switch res.Status {
	case StatusSuccess, "":
		return nil
	case StatusFailure:
		detail := ""
		if res.Payload != nil {
			if b, err := json.Marshal(res.Payload); err == nil {
				detail = ": " + string(b)
			}
		}
		return river.JobCancel(fmt.Errorf("%w for event %s%s", ErrFailure, ev.ID, detail))
	default:
		return river.JobCancel(fmt.Errorf("handler %s returned unknown status %q for event %s", row.Kind, res.Status, ev.ID))
	}
}
