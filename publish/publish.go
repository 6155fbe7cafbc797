// Package publish announces events from Go, as the Python listener's
// NotifyClient did, but durably.
//
// Notify writes the id to notified's outbox and sends pg_notify(channel, id)
// through whatever it is given: a pool, a connection, or the caller's own
// transaction, in which case the event is announced exactly when that
// transaction commits and not at all if it rolls back. Rows inserted into a
// table with the capture trigger need no Notify: the trigger does the same.
//
// An event the bridge has already dispatched is never dispatched again by a
// notification: its handlers run again only through a replay
// (`notified-bridge replay --id ID`). Announce says so: it writes and sends
// nothing for such an event and returns its dispatch record instead, read
// in the same statement (one primary-key lookup), so that a caller can tell
// its user. The record is looked up by the id as given: the bridge records
// the canonical text of an id (42 for 042), so an id written otherwise is
// announced, and the bridge then finds it dispatched and does nothing.
package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/ident"
)

// DB is what Notify runs its statement through: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx (Exec, Query and QueryRow, as pgx has them).
type DB = dbtx.DBTX

// Publisher announces event ids on one channel.
type Publisher struct {
	channel string
	sql     string
}

// announceSQL writes event $2 to the outbox of channel $1 and notifies it,
// unless the bridge has recorded its dispatch already; it returns that
// record (NULLs when there is none) and whether it notified. The CASE
// evaluates pg_notify only when there is no record.
const announceSQL = `WITH d AS (
		SELECT dispatched_at, outcome, jsonb_array_length(jobs) AS jobs
		FROM {schema}.notified_dispatch WHERE channel = $1 AND event_id = $2),
	o AS (
		INSERT INTO {schema}.notified_outbox (channel, event_id)
		SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM d))
	SELECT (SELECT dispatched_at FROM d), (SELECT outcome FROM d), (SELECT jobs FROM d),
		CASE WHEN EXISTS (SELECT 1 FROM d) THEN false ELSE pg_notify($1, $2) IS NOT NULL END`

// New returns a publisher for channel (empty: "events") whose outbox is in
// schema (empty: the connection's current schema).
func New(schema, channel string) (*Publisher, error) {
	if err := ident.ValidateSchema(schema); err != nil {
		return nil, err
	}
	if channel == "" {
		channel = ident.DefaultChannel
	}
	if err := ident.ValidateChannel(channel); err != nil {
		return nil, err
	}
	return &Publisher{channel: channel, sql: dbtx.InSchema(schema, announceSQL)}, nil
}

// Dispatch is the bridge's record of an event it dispatched.
type Dispatch struct {
	// At is when the bridge dispatched the event.
	At time.Time
	// Outcome is dispatched, unrouted, missing or rejected.
	Outcome string
	// Jobs is the number of jobs created for the event when it was
	// dispatched, one per route (replays may have created more since).
	Jobs int
}

// Result is what Announce did.
type Result struct {
	// Dispatched, when not nil, is the dispatch record of the event: it
	// was dispatched already, and Announce wrote and sent nothing.
	Dispatched *Dispatch
}

// AlreadyDispatched reports whether the event had been dispatched already,
// so that Announce did nothing.
func (r Result) AlreadyDispatched() bool { return r.Dispatched != nil }

// Notify announces the event with the given id, or does nothing when the
// bridge has dispatched it already (see Announce to tell which).
func (p *Publisher) Notify(ctx context.Context, db DB, id string) error {
	_, err := p.Announce(ctx, db, id)
	return err
}

// Announce announces the event with the given id, as Notify does, and says
// whether the event had been dispatched already, in which case it wrote and
// sent nothing and the result holds the dispatch record. Running the
// event's handlers again takes a replay.
func (p *Publisher) Announce(ctx context.Context, db DB, id string) (Result, error) {
	if id == "" {
		return Result{}, errors.New("notify: event id is empty")
	}
	var (
		at       *time.Time
		outcome  *string
		jobs     *int32
		notified bool
	)
	if err := db.QueryRow(ctx, p.sql, p.channel, id).Scan(&at, &outcome, &jobs, &notified); err != nil {
		return Result{}, fmt.Errorf("notify event %s on channel %q: %w", id, p.channel, err)
	}
	if notified || at == nil {
		return Result{}, nil
	}
	d := &Dispatch{At: *at}
	if outcome != nil {
		d.Outcome = *outcome
	}
	if jobs != nil {
		d.Jobs = int(*jobs)
	}
	return Result{Dispatched: d}, nil
}
