// Package publish announces events from Go, as the Python listener's
// NotifyClient did, but durably.
//
// Notify writes the id to notified's outbox and sends pg_notify(channel, id)
// through whatever it is given: a pool, a connection, or the caller's own
// transaction, in which case the event is announced exactly when that
// transaction commits and not at all if it rolls back. Rows inserted into a
// table with the capture trigger need no Notify: the trigger does the same.
package publish

import (
	"context"
	"errors"
	"fmt"

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
	return &Publisher{
		channel: channel,
		sql: "WITH o AS (INSERT INTO " + ident.Qualify(schema, "notified_outbox") +
			" (channel, event_id) VALUES ($1, $2)) SELECT pg_notify($1, $2)",
	}, nil
}

// Notify announces the event with the given id.
func (p *Publisher) Notify(ctx context.Context, db DB, id string) error {
	if id == "" {
		return errors.New("notify: event id is empty")
	}
	if _, err := db.Exec(ctx, p.sql, p.channel, id); err != nil {
		return fmt.Errorf("notify event %s on channel %q: %w", id, p.channel, err)
	}
	return nil
}
