// Package routes stores which handler kinds receive which events.
//
// A route says: events named Event become one River job of kind Kind, in
// Queue, with Priority and MaxAttempts. Routes live in the notified_route
// table, so every bridge and every worker process sees the same set, and a
// change applies to the next batch the bridge dispatches, without a restart.
package routes

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// Defaults for the optional parts of a route, the same as River's.
const (
	DefaultQueue       = "default"
	DefaultPriority    = 1
	DefaultMaxAttempts = 25
)

// MaxKindLength is the longest handler kind River accepts, in characters.
const MaxKindLength = 127

// Route sends events named Event to the handler kind Kind.
type Route struct {
	Event       string `json:"event"`
	Kind        string `json:"kind"`
	Queue       string `json:"queue"`
	Priority    int    `json:"priority"`
	MaxAttempts int    `json:"max_attempts"`
}

// queueRE is River's rule for queue names.
var queueRE = regexp.MustCompile(`^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$`)

// withDefaults fills the zero-valued optional fields.
func (r Route) withDefaults() Route {
	if r.Queue == "" {
		r.Queue = DefaultQueue
	}
	if r.Priority == 0 {
		r.Priority = DefaultPriority
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	return r
}

// Validate reports what is wrong with r, after defaults are applied.
func (r Route) Validate() error {
	r = r.withDefaults()
	switch {
	case r.Event == "":
		return errors.New("route: event name is empty")
	case r.Kind == "":
		return fmt.Errorf("route for event %q: handler kind is empty", r.Event)
	case utf8.RuneCountInString(r.Kind) > MaxKindLength:
		return fmt.Errorf("route %s -> %.40s...: handler kind is longer than %d characters, River's limit", r.Event, r.Kind, MaxKindLength)
	case len(r.Queue) > 64 || !queueRE.MatchString(r.Queue):
		return fmt.Errorf("route %s -> %s: queue %q is invalid: use lower-case letters and digits separated by _ or -, at most 64 characters", r.Event, r.Kind, r.Queue)
	case r.Priority < 1 || r.Priority > 4:
		return fmt.Errorf("route %s -> %s: priority %d is out of range: use 1 (highest) to 4", r.Event, r.Kind, r.Priority)
	case r.MaxAttempts < 1 || r.MaxAttempts > 32767:
		return fmt.Errorf("route %s -> %s: max attempts %d is out of range: use 1 to 32767", r.Event, r.Kind, r.MaxAttempts)
	}
	return nil
}

// DB is what the store runs its queries through: a *pgxpool.Pool, a
// *pgx.Conn or a pgx.Tx (Exec, Query and QueryRow, as pgx has them).
type DB = dbtx.DBTX

// Store reads and writes routes in one schema.
type Store struct {
	db     DB
	schema string
}

// NewStore returns a store for the routes in schema (empty: the connection's
// current schema).
func NewStore(db DB, schema string) *Store {
	return &Store{db: db, schema: schema}
}

// sql returns query for the store's schema.
func (s *Store) sql(query string) string { return dbtx.InSchema(s.schema, query) }

// Add creates the route, or updates its queue, priority and max attempts when
// a route for the same event and kind exists.
func (s *Store) Add(ctx context.Context, r Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return s.upsert(ctx, r)
}

// upsert writes a validated route.
func (s *Store) upsert(ctx context.Context, r Route) error {
	r = r.withDefaults()
	_, err := s.db.Exec(ctx, s.sql(upsertRouteSQL), r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts)
	if err != nil {
		return fmt.Errorf("add route %s -> %s: %w", r.Event, r.Kind, err)
	}
	return nil
}

// Ensure adds or updates every route given, after validating all of them, so
// that a worker process can declare its routes at start-up. Routes not given
// are left as they are. Pass a transaction to make it all or nothing.
func (s *Store) Ensure(ctx context.Context, rs ...Route) error {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	for _, r := range rs {
		if err := s.upsert(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// AddMissing creates the routes that do not exist yet, with their options,
// and leaves existing ones (and their options) as they are. It returns the
// routes it created.
func (s *Store) AddMissing(ctx context.Context, rs ...Route) ([]Route, error) {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	var added []Route
	for _, r := range rs {
		r = r.withDefaults()
		tag, err := s.db.Exec(ctx, s.sql(addRouteIfMissingSQL), r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts)
		if err != nil {
			return added, fmt.Errorf("add route %s -> %s: %w", r.Event, r.Kind, err)
		}
		if tag.RowsAffected() > 0 {
			added = append(added, r)
		}
	}
	return added, nil
}

// Remove deletes the route from event to kind and reports whether it existed.
func (s *Store) Remove(ctx context.Context, event, kind string) (bool, error) {
	tag, err := s.db.Exec(ctx, s.sql(removeRouteSQL), event, kind)
	if err != nil {
		return false, fmt.Errorf("remove route %s -> %s: %w", event, kind, err)
	}
	return tag.RowsAffected() > 0, nil
}

// List returns every route, ordered by event and kind.
func (s *Store) List(ctx context.Context) ([]Route, error) {
	rows, err := s.db.Query(ctx, ListSQL(s.schema))
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return ScanList(rows)
}

// ListSQL is the statement List runs for the routes in schema, for a
// caller that sends it with others in one round trip (a pgx.Batch);
// ScanList reads its rows.
func ListSQL(schema string) string { return dbtx.InSchema(schema, listRoutesSQL) }

// ScanList reads the rows of ListSQL, and closes them.
func ScanList(rows pgx.Rows) ([]Route, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Route, error) {
		var r Route
		err := row.Scan(&r.Event, &r.Kind, &r.Queue, &r.Priority, &r.MaxAttempts)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return out, nil
}
