// Package history reads what became of events and their jobs: one event's
// outcome and every job created for it, the state of the whole pipeline, and
// the dead letters; and it prunes history past its retention.
//
// It reads notified's tables and views (see docs/history.md):
// notified_dispatch (one row per event the bridge recorded), notified_job
// (how each job ended, recorded by a trigger as River finalizes it, so it
// survives River's job cleaner), notified_replay, notified_bridge, and the
// views notified_jobs and notified_history built on them and on river_job.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/lanes"
)

// DB is what the store runs its queries through: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx (Exec, Query and QueryRow, as pgx has them).
type DB = dbtx.DBTX

// Store reads and prunes the history kept in one schema.
type Store struct {
	db     DB
	schema string
}

// NewStore returns a store for the tables in schema ("" for the connection's
// current schema).
func NewStore(db DB, schema string) *Store {
	return &Store{db: db, schema: schema}
}

// sql returns query for the store's schema.
func (s *Store) sql(query string) string { return dbtx.InSchema(s.schema, query) }

// ErrNotFound says no event with the id was ever announced on the channel (or
// its history has been pruned).
var ErrNotFound = errors.New("event not found")

// The outcomes an event can have, as in notified_dispatch.outcome, plus
// OutcomePending for an event announced but not dispatched yet.
const (
	OutcomeDispatched = "dispatched"
	OutcomeUnrouted   = "unrouted"
	OutcomeMissing    = "missing"
	OutcomeRejected   = "rejected"
	OutcomePending    = "pending"
)

// The final states of a River job.
const (
	StateCompleted = "completed"
	StateCancelled = "cancelled"
	StateDiscarded = "discarded"
)

// Job is one job notified created for an event, live or finished.
type Job struct {
	ID          int64           `json:"job_id"`
	EventID     string          `json:"event_id"`
	EventName   string          `json:"event_name"`
	Handler     string          `json:"handler"`
	Queue       string          `json:"queue"`
	State       string          `json:"state"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	CreatedAt   time.Time       `json:"created_at"`
	AttemptedAt *time.Time      `json:"attempted_at"`
	FinalizedAt *time.Time      `json:"finalized_at"`
	LastError   *string         `json:"last_error"`
	Output      json.RawMessage `json:"output"`
	// ReplayID is the replay that created the job; nil for a job created
	// when the event was dispatched.
	ReplayID     *int64  `json:"replay_id"`
	ReplayedBy   *string `json:"replayed_by,omitempty"`
	ReplayReason *string `json:"replay_reason,omitempty"`
	// Data is the event's row as the job's handler received it (the data
	// of the job's args), read by Event while River has the job. River's
	// job cleaner deletes the job, args included, and notified does not
	// keep them: Data is then nil.
	Data json.RawMessage `json:"data,omitempty"`
	// Lane is the job's lane key when its route was ordered (see package
	// lanes), kept after River's cleaner deleted the job.
	Lane string `json:"lane,omitempty"`
	// Webhook is the URL a webhook route's job delivers to, kept after
	// River's cleaner deleted the job.
	Webhook string `json:"webhook,omitempty"`
	// WaitingBehind is, for a job waiting in its lane (River's pending
	// state), the job its lane runs now; nil when the lane is stopped or
	// the job does not wait.
	WaitingBehind *int64 `json:"waiting_behind,omitempty"`
	// LaneStoppedAt is, for a job waiting in a lane stopped at a failure,
	// the failed job it stopped at.
	LaneStoppedAt *int64 `json:"lane_stopped_at,omitempty"`
	// LaneEvents is what happened to the job's lane at its failure: the
	// lane went on past it, or stopped there and was resumed.
	LaneEvents []lanes.Event `json:"lane_events,omitempty"`
}

// Route is a handler an event was routed to when it was dispatched, as
// recorded in notified_dispatch.jobs.
type Route struct {
	Handler     string `json:"kind"`
	Queue       string `json:"queue"`
	Priority    int    `json:"priority"`
	MaxAttempts int    `json:"max_attempts"`
	// Where is the route's filter when the event was dispatched, if any.
	Where string `json:"where,omitempty"`
	// OrderedBy is the route's ordering key when the event was dispatched,
	// if any.
	OrderedBy string `json:"ordered_by,omitempty"`
	// Webhook is the URL a webhook route delivered to, if it is one.
	Webhook string `json:"webhook,omitempty"`
	// Skipped is empty when the handler got a job at dispatch, else why
	// not: SkippedByFilter or SkippedByFilterError.
	Skipped string `json:"skipped,omitempty"`
}

// SkipText says in words why the route made no job at dispatch ("skipped
// by filter", "skipped: filter error"), or "" if it made one.
func (r Route) SkipText() string {
	switch r.Skipped {
	case "":
		return ""
	case SkippedByFilter:
		return "skipped by filter"
	case SkippedByFilterError:
		return "skipped: filter error"
	}
	return "skipped: " + r.Skipped
}

// Why a route of a dispatched event made no job (Route.Skipped).
const (
	// SkippedByFilter: the route's filter did not match the row.
	SkippedByFilter = "filter"
	// SkippedByFilterError: the route's filter could not be evaluated on
	// the row (strict mode on a missing key, a type mismatch), which
	// counts as not matching.
	SkippedByFilterError = "filter_error"
)

// Event is one event's history.
type Event struct {
	Channel string  `json:"channel"`
	ID      string  `json:"event_id"`
	Name    *string `json:"event_name"`
	// Outcome is dispatched, unrouted, missing, rejected, or pending (in the
	// outbox, not dispatched yet).
	Outcome      string     `json:"outcome"`
	Reason       *string    `json:"reason"`
	NotifiedAt   time.Time  `json:"notified_at"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	// Routes are the handlers the event was routed to when dispatched,
	// each saying whether its filter skipped the event (Route.Skipped).
	Routes []Route `json:"routes"`
	// Jobs are every job created for the event, oldest first.
	Jobs []Job `json:"jobs"`
	// Data is the event's row as it is now in the events table, when the
	// caller looked it up (see View): an UPDATE since the dispatch shows
	// here, and not in what the handlers received (Job.Data).
	Data json.RawMessage `json:"current_row,omitempty"`
}

// Event returns the history of the event with id (as the bridge recorded
// it: the canonical text of the id) on channel, or ErrNotFound.
func (s *Store) Event(ctx context.Context, channel, id string) (*Event, error) {
	ev := &Event{Channel: channel, ID: id, Routes: []Route{}, Jobs: []Job{}}
	var routesJSON []byte
	var dispatchedAt time.Time
	err := s.db.QueryRow(ctx, s.sql(eventDispatchSQL), channel, id).
		Scan(&ev.Name, &ev.Outcome, &ev.Reason, &ev.NotifiedAt, &dispatchedAt, &routesJSON)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Not dispatched: perhaps still in the outbox.
		var created *time.Time
		if err := s.db.QueryRow(ctx, s.sql(eventPendingSQL), channel, id).Scan(&created); err != nil {
			return nil, fmt.Errorf("look up event %s in the outbox: %w", id, err)
		}
		if created == nil {
			return nil, fmt.Errorf("%w: no event %s on channel %q has been notified (or its history is past the retention)", ErrNotFound, id, channel)
		}
		ev.Outcome, ev.NotifiedAt = OutcomePending, *created
		reason := "in the outbox, not dispatched yet: is a bridge running for this channel?"
		ev.Reason = &reason
		return ev, nil
	case err != nil:
		return nil, fmt.Errorf("look up event %s: %w", id, err)
	}
	ev.DispatchedAt = &dispatchedAt
	if err := json.Unmarshal(routesJSON, &ev.Routes); err != nil {
		return nil, fmt.Errorf("decode routes of event %s: %w", id, err)
	}
	rows, err := s.db.Query(ctx, s.sql(eventJobsSQL), channel, id)
	if err != nil {
		return nil, fmt.Errorf("read jobs of event %s: %w", id, err)
	}
	ev.Jobs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) {
		j := Job{EventID: id}
		if ev.Name != nil {
			j.EventName = *ev.Name
		}
		err := row.Scan(&j.ID, &j.Handler, &j.Queue, &j.State, &j.Attempt, &j.MaxAttempts,
			&j.CreatedAt, &j.AttemptedAt, &j.FinalizedAt, &j.LastError, &j.Output, &j.ReplayID, &j.ReplayedBy, &j.ReplayReason)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("read jobs of event %s: %w", id, err)
	}
	if err := s.readJobDetails(ctx, ev.Jobs); err != nil {
		return nil, fmt.Errorf("read the data and lanes of event %s's jobs: %w", id, err)
	}
	return ev, nil
}

// readJobDetails fills in, in one query, what each job's row in River
// (while River has it) and notified's tables say beyond its outcome: the
// data its handler received, a webhook job's URL and, for the jobs of
// ordered routes, their lane, what a waiting job waits for and what
// happened to the lane at a failure.
func (s *Store) readJobDetails(ctx context.Context, js []Job) error {
	if len(js) == 0 {
		return nil
	}
	ids := make([]int64, len(js))
	byID := make(map[int64]*Job, len(js))
	for i := range js {
		ids[i] = js[i].ID
		byID[js[i].ID] = &js[i]
	}
	rows, err := s.db.Query(ctx, s.sql(jobDetailsSQL), ids)
	if err != nil {
		return err
	}
	var (
		jobID             int64
		data              []byte
		lane, hook        *string
		behind, stoppedAt *int64
	)
	var laned []int64
	_, err = pgx.ForEachRow(rows, []any{&jobID, &data, &lane, &behind, &stoppedAt, &hook}, func() error {
		j := byID[jobID]
		if j == nil {
			return nil
		}
		if data != nil {
			j.Data = append(json.RawMessage(nil), data...)
		}
		if hook != nil {
			j.Webhook = *hook
		}
		if lane != nil {
			j.Lane, j.WaitingBehind, j.LaneStoppedAt = *lane, behind, stoppedAt
			laned = append(laned, jobID)
		}
		return nil
	})
	if err != nil || len(laned) == 0 {
		return err
	}
	events, err := lanes.NewStore(s.db, s.schema).Events(ctx, laned)
	if err != nil {
		return err
	}
	for _, e := range events {
		if j := byID[e.JobID]; j != nil {
			j.LaneEvents = append(j.LaneEvents, e)
		}
	}
	return nil
}

// scanJob reads a row of deadLettersSQL.
func scanJob(row pgx.CollectableRow) (Job, error) {
	var j Job
	err := row.Scan(&j.ID, &j.EventID, &j.EventName, &j.Handler, &j.Queue, &j.State, &j.Attempt, &j.MaxAttempts,
		&j.CreatedAt, &j.AttemptedAt, &j.FinalizedAt, &j.LastError, &j.Output, &j.ReplayID, &j.Webhook)
	return j, err
}

// DeadLetterFilter selects dead letters.
type DeadLetterFilter struct {
	// Channel is the channel whose events' jobs are listed.
	Channel string
	// Handlers, when not empty, keeps only these handler kinds.
	Handlers []string
	// Since, when not zero, keeps only jobs finalized at or after it.
	Since time.Time
	// JobIDs, when not empty, keeps only these jobs.
	JobIDs []int64
	// Limit caps the number of jobs returned; 0 means no limit.
	Limit int
}

// DeadLetters returns the jobs that ended discarded (out of attempts) or
// cancelled (a permanent error or a FAILURE result) and are the newest job of
// their handler for their event: a dead letter that was replayed or retried
// since is not listed. Newest first.
func (s *Store) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]Job, error) {
	q, args := deadLettersQuery(s.schema, f)
	rows, err := s.db.Query(ctx, q, args)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// CountDeadLetters counts the dead letters of channel finalized at or after
// since (all of them when since is zero): the jobs DeadLetters lists with
// those two filters, counted in the database. It reads in proportion to the
// dead letters in the window and the jobs River still has, not to the whole
// history.
func (s *Store) CountDeadLetters(ctx context.Context, channel string, since time.Time) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, s.sql(deadLetterCountSQL), channel, since).Scan(&n); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// Pruned counts the rows Prune deleted.
type Pruned struct {
	Events  int64 `json:"events"`
	Jobs    int64 `json:"jobs"`
	Replays int64 `json:"replays"`
	Bridges int64 `json:"bridges"`
}

// pruneBatch is how many rows one prune statement deletes (the LIMIT of the
// prune queries): small enough that no statement holds many locks or runs
// long.
const pruneBatch = 5000

// Prune deletes history older than before: dispatch records of events
// dispatched before it, outcomes of jobs finalized before it, and replays
// started before it; and bridges not seen for a day, whatever before is.
// It deletes in batches, so it is safe to run while bridges and workers are
// busy, and from several processes at once.
//
// A dispatch record is also what keeps a second NOTIFY of the same id from
// dispatching the event again: once it is pruned, a hand-sent NOTIFY of that
// id dispatches it anew. The capture trigger never announces an event twice.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	steps := []struct {
		what  string
		query string
		args  []any
		n     *int64
	}{
		{"dispatch records", pruneDispatchSQL, []any{before}, &p.Events},
		{"job outcomes", pruneJobsSQL, []any{before}, &p.Jobs},
		{"replays", pruneReplaysSQL, []any{before}, &p.Replays},
		// Bridges check in every poll interval: a day of silence means
		// they are gone, whatever the retention.
		{"bridges", pruneBridgesSQL, nil, &p.Bridges},
	}
	for _, st := range steps {
		q := s.sql(st.query)
		for {
			tag, err := s.db.Exec(ctx, q, st.args...)
			if err != nil {
				return p, fmt.Errorf("prune %s older than %s: %w", st.what, before.Format(time.RFC3339), err)
			}
			*st.n += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	return p, nil
}
