// Package lanes reads and operates the lanes of ordered routes.
//
// A route ordered by a key (routes.Route.OrderedBy) puts each job of an
// event that has the key into a lane, one per channel, handler kind and
// key: the jobs of a lane run one at a time, in the order their events
// were committed. A lane exists while it has jobs. When one of them is
// discarded or cancelled, the lane goes on with the next (and records it),
// or, if its route says OnFailure stop, stays stopped until Resume.
package lanes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// DB is what the store runs its queries through: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx.
type DB = dbtx.DBTX

// Store reads and operates the lanes in one schema.
type Store struct {
	db     DB
	schema string
}

// NewStore returns a store for the lanes in schema (empty: the connection's
// current schema).
func NewStore(db DB, schema string) *Store { return &Store{db: db, schema: schema} }

func (s *Store) sql(q string) string { return dbtx.InSchema(s.schema, q) }

// Lane is one lane of an ordered route with jobs.
type Lane struct {
	Channel string `json:"channel"`
	Kind    string `json:"kind"`
	// Key is the lane's key as JSON text (42, "A-17"), or "sha256:" and a
	// digest for a key longer than 200 bytes.
	Key string `json:"key"`
	// HeadJobID is the job that runs (or waits for a retry) now; nil while
	// the lane is stopped.
	HeadJobID *int64 `json:"head_job_id,omitempty"`
	// HeadState is the head job's River state, while River has it.
	HeadState string `json:"head_state,omitempty"`
	// StoppedJobID is the failed job the lane stopped at; nil unless
	// stopped.
	StoppedJobID *int64     `json:"stopped_job_id,omitempty"`
	StoppedAt    *time.Time `json:"stopped_at,omitempty"`
	// Waiting is how many jobs wait behind the head (or the stop).
	Waiting   int64     `json:"waiting"`
	CreatedAt time.Time `json:"created_at"`
}

// Stopped reports whether the lane is stopped at a failure.
func (l Lane) Stopped() bool { return l.StoppedJobID != nil }

// ListOptions choose the lanes List returns.
type ListOptions struct {
	Channel string // empty: every channel
	Kind    string // empty: every kind
	Stopped bool   // only the stopped lanes
	Limit   int    // at most this many; 0: 100
	// After continues a listing after this lane (its Channel, Kind and Key).
	After *Lane
}

// List returns lanes, ordered by channel, kind and key.
func (s *Store) List(ctx context.Context, o ListOptions) ([]Lane, error) {
	if o.Limit <= 0 {
		o.Limit = 100
	}
	var ac, ak, ay *string
	if o.After != nil {
		ac, ak, ay = &o.After.Channel, &o.After.Kind, &o.After.Key
	}
	rows, err := s.db.Query(ctx, s.sql(listLanesSQL), o.Channel, o.Kind, o.Stopped, o.Limit, ac, ak, ay)
	if err != nil {
		return nil, fmt.Errorf("list lanes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Lane, error) {
		var l Lane
		var state *string
		err := row.Scan(&l.Channel, &l.Kind, &l.Key, &l.HeadJobID, &state, &l.StoppedJobID, &l.StoppedAt, &l.Waiting, &l.CreatedAt)
		if state != nil {
			l.HeadState = *state
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list lanes: %w", err)
	}
	return out, nil
}

// ErrNoLane is returned for a lane that does not exist: it has no jobs.
var ErrNoLane = errors.New("no such lane")

// ErrNotStopped is returned by Resume for a lane that is not stopped.
var ErrNotStopped = errors.New("lane is not stopped")

// ErrFailedJobGone is returned by Resume with RetryFailed when River no
// longer has the failed job as discarded or cancelled (its cleaner deleted
// it, or it was retried by hand).
var ErrFailedJobGone = errors.New("the failed job is gone")

// ResumeParams name a stopped lane and say how to resume it.
type ResumeParams struct {
	Channel, Kind, Key string
	// RetryFailed runs the failed job the lane stopped at again, first,
	// with one more attempt if it used them all; otherwise the lane goes
	// on with the job after it.
	RetryFailed bool
	// RequestedBy and Reason are recorded with the resume.
	RequestedBy, Reason string
}

// Resume resumes a stopped lane, in one transaction (a savepoint if the
// store's DB is a transaction). It returns the failed job the lane was
// stopped at.
func (s *Store) Resume(ctx context.Context, p ResumeParams) (int64, error) {
	db, ok := s.db.(dbtx.Beginner)
	if !ok {
		return 0, fmt.Errorf("resume lane %s of %s: the store's DB cannot begin a transaction: use a pool, a connection or a transaction", p.Key, p.Kind)
	}
	var stopped int64
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var id int64
		var job *int64
		err := tx.QueryRow(ctx, s.sql(lockLaneSQL), p.Channel, p.Kind, p.Key).Scan(&id, &job)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("resume lane %s of %s on channel %q: %w: list the stopped lanes with `notified-bridge lanes list --stopped`", p.Key, p.Kind, p.Channel, ErrNoLane)
		case err != nil:
			return fmt.Errorf("resume lane %s of %s: %w", p.Key, p.Kind, err)
		case job == nil:
			return fmt.Errorf("resume lane %s of %s on channel %q: %w", p.Key, p.Kind, p.Channel, ErrNotStopped)
		}
		stopped = *job
		if p.RetryFailed {
			var queue string
			err := tx.QueryRow(ctx, s.sql(retryStoppedSQL), stopped, s.schema).Scan(&queue, new(any))
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("resume lane %s of %s: retry job %d: %w: resume without retrying it", p.Key, p.Kind, stopped, ErrFailedJobGone)
			}
			if err != nil {
				return fmt.Errorf("resume lane %s of %s: retry job %d: %w", p.Key, p.Kind, stopped, err)
			}
		}
		if _, err := tx.Exec(ctx, s.sql(resumeSQL), id, stopped, p.RetryFailed, p.RequestedBy, p.Reason); err != nil {
			return fmt.Errorf("resume lane %s of %s: %w", p.Key, p.Kind, err)
		}
		if !p.RetryFailed {
			if _, err := tx.Exec(ctx, s.sql(advanceSQL), id); err != nil {
				return fmt.Errorf("resume lane %s of %s: release its next job: %w", p.Key, p.Kind, err)
			}
		}
		return nil
	})
	return stopped, err
}

// Event is what happened to a lane at a failed job: the lane went on past
// it (ActionContinued) or stopped there (ActionStopped), or an operator
// resumed it (ActionResumed).
type Event struct {
	Channel   string    `json:"channel"`
	Kind      string    `json:"kind"`
	Key       string    `json:"key"`
	Action    string    `json:"action"`
	JobID     int64     `json:"job_id"`
	JobState  string    `json:"job_state,omitempty"`
	NextJobID *int64    `json:"next_job_id,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// The actions of Event.
const (
	ActionContinued = "continued"
	ActionStopped   = "stopped"
	ActionResumed   = "resumed"
)

// Events returns what happened to lanes at the failures of jobs, oldest
// first.
func (s *Store) Events(ctx context.Context, jobIDs []int64) ([]Event, error) {
	rows, err := s.db.Query(ctx, s.sql(eventsSQL), jobIDs)
	if err != nil {
		return nil, fmt.Errorf("read lane events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		var state, actor, reason *string
		err := row.Scan(&e.Channel, &e.Kind, &e.Key, &e.Action, &e.JobID, &state, &e.NextJobID, &actor, &reason, &e.At)
		e.JobState, e.Actor, e.Reason = deref(state), deref(actor), deref(reason)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read lane events: %w", err)
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// KindSummary counts the lanes of one handler kind.
type KindSummary struct {
	Kind    string `json:"kind"`
	Lanes   int64  `json:"lanes"`   // lanes with jobs
	Stopped int64  `json:"stopped"` // of which stopped at a failure
	Waiting int64  `json:"waiting"` // jobs waiting behind the heads
}

// Summary counts the lanes of channel, per handler kind.
func (s *Store) Summary(ctx context.Context, channel string) ([]KindSummary, error) {
	rows, err := s.db.Query(ctx, s.sql(summarySQL), channel)
	if err != nil {
		return nil, fmt.Errorf("count lanes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (KindSummary, error) {
		var k KindSummary
		err := row.Scan(&k.Kind, &k.Lanes, &k.Stopped, &k.Waiting)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("count lanes: %w", err)
	}
	return out, nil
}
