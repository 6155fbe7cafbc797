// Package routes stores which handler kinds receive which events.
//
// A route says: events named Event become one River job of kind Kind, in
// Queue, with Priority and MaxAttempts; with a Where filter, only the events
// whose row matches it do. Routes live in the notified_route
// table, so every bridge and every worker process sees the same set, and a
// change applies to the next batch the bridge dispatches, without a restart.
package routes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/webhook"
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
	// Where, when set, is a filter: a Postgres jsonpath predicate (e.g.
	// `$.total > 1000`) on the event's row as JSON, the data the handler
	// receives. Only the events whose row matches it get a job. The bridge's
	// dispatch transaction evaluates it in the server, in lax or strict mode
	// as the path says; a row it cannot evaluate (strict mode on a missing
	// key, a type mismatch) does not match. Empty: every event of the name.
	Where string `json:"where"`
	// OrderedBy, when set, orders the route's jobs per key: a Postgres
	// jsonpath (e.g. `$.order_id`) that selects the key in the event's row
	// as JSON. The jobs of one handler kind whose events have the same key
	// run one at a time, in the order their events were committed; events
	// with different keys run in parallel. An event whose row has no key
	// (the path selects nothing, or JSON null) is not ordered. Empty: the
	// route's jobs are not ordered.
	OrderedBy string `json:"ordered_by"`
	// OnFailure says what an ordered route's lane does when one of its
	// jobs is discarded or cancelled: OnFailureContinue (the default) runs
	// the next job and records that the lane went on past the failure;
	// OnFailureStop keeps the lane stopped until an operator resumes it
	// (lanes.Store.Resume).
	OnFailure string `json:"on_failure"`
	// Webhook, when set, makes the route deliver its events over HTTP: its
	// jobs are of the built-in kind WebhookKind (Kind must be that or
	// empty), in WebhookQueue unless Queue says otherwise, and a webhook
	// worker (`notified-bridge work`, or jobs.RegisterWebhooks) POSTs each
	// event to this http or https URL, signed per Standard Webhooks. Several
	// webhook routes of one event, to different URLs, are separate routes.
	Webhook string `json:"webhook,omitempty"`
	// SecretEnv names the environment variable of the webhook worker that
	// holds the signing secret (whsec_...): the secret itself is never
	// stored. It must start with SecretEnvPrefix. Empty: requests are not
	// signed.
	SecretEnv string `json:"secret_env,omitempty"`
}

// Webhook routes.
const (
	// WebhookKind is the job kind of every webhook route.
	WebhookKind = "notified_webhook"
	// WebhookQueue is the default queue of webhook routes, the one the
	// webhook worker works by default.
	WebhookQueue = "webhook"
	// SecretEnvPrefix starts the name of every variable that holds a
	// webhook secret, so that a route cannot make the worker sign with
	// another variable of its environment (DATABASE_URL, say).
	SecretEnvPrefix = "NOTIFIED_WEBHOOK_SECRET"
)

// secretEnvRE is the rule for SecretEnv, as migration 006's CHECK has it.
var secretEnvRE = regexp.MustCompile(`^` + SecretEnvPrefix + `[A-Z0-9_]{0,64}$`)

// What an ordered route's lane does after a job that failed for good.
const (
	OnFailureContinue = "continue"
	OnFailureStop     = "stop"
)

// MaxOrderedByLength is the longest key path a route takes, in bytes.
const MaxOrderedByLength = 1024

// OrderedByExample is a key path shown in the errors about ordering.
const OrderedByExample = `$.order_id`

// MaxWhereLength is the longest filter a route takes, in bytes.
const MaxWhereLength = 4096

// WhereExample is a filter shown in the errors about filters.
const WhereExample = `$.total > 1000`

// queueRE is River's rule for queue names.
var queueRE = regexp.MustCompile(`^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$`)

// withDefaults fills the zero-valued optional fields.
func (r Route) withDefaults() Route {
	r.Webhook = strings.TrimSpace(r.Webhook)
	if r.Webhook != "" && r.Kind == "" {
		r.Kind = WebhookKind
	}
	if r.Queue == "" && r.Webhook != "" {
		r.Queue = WebhookQueue
	}
	if r.Queue == "" {
		r.Queue = DefaultQueue
	}
	if r.Priority == 0 {
		r.Priority = DefaultPriority
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	r.Where = strings.TrimSpace(r.Where)
	r.OrderedBy = strings.TrimSpace(r.OrderedBy)
	if r.OnFailure == "" && r.OrderedBy != "" {
		r.OnFailure = OnFailureContinue
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
	case len(r.Where) > MaxWhereLength:
		return fmt.Errorf("route %s -> %s: filter is longer than %d bytes: write a shorter jsonpath predicate, e.g. '%s'", r.Event, r.Kind, MaxWhereLength, WhereExample)
	case strings.ContainsRune(r.Where, 0) || !utf8.ValidString(r.Where):
		return fmt.Errorf("route %s -> %s: filter is not valid UTF-8 text: write a jsonpath predicate, e.g. '%s'", r.Event, r.Kind, WhereExample)
	case len(r.OrderedBy) > MaxOrderedByLength:
		return fmt.Errorf("route %s -> %s: ordering key is longer than %d bytes: write a jsonpath that selects the key, e.g. '%s'", r.Event, r.Kind, MaxOrderedByLength, OrderedByExample)
	case strings.ContainsRune(r.OrderedBy, 0) || !utf8.ValidString(r.OrderedBy):
		return fmt.Errorf("route %s -> %s: ordering key is not valid UTF-8 text: write a jsonpath that selects the key, e.g. '%s'", r.Event, r.Kind, OrderedByExample)
	case r.OnFailure != "" && r.OnFailure != OnFailureContinue && r.OnFailure != OnFailureStop:
		return fmt.Errorf("route %s -> %s: on failure %q is not %q or %q", r.Event, r.Kind, r.OnFailure, OnFailureContinue, OnFailureStop)
	case r.OnFailure == OnFailureStop && r.OrderedBy == "":
		return fmt.Errorf("route %s -> %s: on failure %q applies to ordered routes only: give the ordering key too, e.g. '%s'", r.Event, r.Kind, OnFailureStop, OrderedByExample)
	case r.Webhook == "" && r.Kind == WebhookKind:
		return fmt.Errorf("route %s -> %s: the kind %s is for webhook routes: give the URL to deliver to", r.Event, r.Kind, WebhookKind)
	case r.Webhook == "" && r.SecretEnv != "":
		return fmt.Errorf("route %s -> %s: a secret applies to webhook routes only", r.Event, r.Kind)
	case r.Webhook == "":
		return nil
	case r.Kind != WebhookKind:
		return fmt.Errorf("route %s -> %s: a webhook route's kind is %s: leave the kind out", r.Event, r.Kind, WebhookKind)
	case r.SecretEnv != "" && !secretEnvRE.MatchString(r.SecretEnv):
		return fmt.Errorf("route %s -> webhook: secret variable %q must be named %s followed by up to 64 upper-case letters, digits or _, e.g. %s_WELCOME",
			r.Event, r.SecretEnv, SecretEnvPrefix, SecretEnvPrefix)
	}
	if err := webhook.ValidateURL(r.Webhook); err != nil {
		return fmt.Errorf("route %s -> webhook: %w", r.Event, err)
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

// Add creates the route, or updates its queue, priority, max attempts,
// filter and ordering when a route for the same event and kind exists. A
// filter and an ordering key are checked by the server (see CheckWhere and
// CheckOrderedBy). A change of ordering applies to the events dispatched
// after it.
func (s *Store) Add(ctx context.Context, r Route) error {
	if err := s.validate(ctx, r); err != nil {
		return err
	}
	return s.upsert(ctx, r)
}

// validate checks r, and its filter and ordering key with the server.
func (s *Store) validate(ctx context.Context, r Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := s.CheckWhere(ctx, r); err != nil {
		return err
	}
	return s.CheckOrderedBy(ctx, r)
}

// ErrInvalidOrderedBy is wrapped by the errors about a route's ordering key
// that the server refused: not a jsonpath, or a predicate.
var ErrInvalidOrderedBy = errors.New("invalid ordering key")

// CheckOrderedBy asks the server whether r's ordering key, if any, is a
// jsonpath that selects a key: it must parse, need no variables and,
// evaluated on an empty object, give neither a boolean (a predicate: every
// event would fall in one of two lanes) nor the object itself (every event
// its own lane). The error, which wraps ErrInvalidOrderedBy, quotes the
// server's message and shows an example.
func (s *Store) CheckOrderedBy(ctx context.Context, r Route) error {
	r = r.withDefaults()
	if r.OrderedBy == "" {
		return nil
	}
	var kind string
	err := s.db.QueryRow(ctx, checkOrderedBySQL, r.OrderedBy).Scan(&kind)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return fmt.Errorf("route %s -> %s: %w %q: %s: write a jsonpath that selects the key, e.g. '%s'",
			r.Event, r.Kind, ErrInvalidOrderedBy, r.OrderedBy, oneLine(pgErr.Message), OrderedByExample)
	case err != nil:
		return fmt.Errorf("route %s -> %s: check ordering key: %w", r.Event, r.Kind, err)
	case kind == "predicate":
		return fmt.Errorf("route %s -> %s: %w %q is a predicate, not a key: name the field that identifies the lane, e.g. '%s'",
			r.Event, r.Kind, ErrInvalidOrderedBy, r.OrderedBy, OrderedByExample)
	case kind == "row":
		return fmt.Errorf("route %s -> %s: %w %q selects the whole row, which makes every event its own lane: name the field that identifies the lane, e.g. '%s'",
			r.Event, r.Kind, ErrInvalidOrderedBy, r.OrderedBy, OrderedByExample)
	}
	return nil
}

// ErrInvalidWhere is wrapped by the errors about a route's filter that the
// server refused: not a jsonpath, or not a predicate.
var ErrInvalidWhere = errors.New("invalid filter")

// CheckWhere asks the server whether r's filter, if any, is a jsonpath
// predicate: it must parse as a jsonpath and, evaluated on an empty object,
// give one boolean (or unknown), as a predicate gives on any row. A path
// that selects items ($.total) or that needs variables is refused. The
// error, which wraps ErrInvalidWhere, quotes the server's message and shows
// an example.
func (s *Store) CheckWhere(ctx context.Context, r Route) error {
	r = r.withDefaults()
	if r.Where == "" {
		return nil
	}
	var predicate bool
	err := s.db.QueryRow(ctx, checkWhereSQL, r.Where).Scan(&predicate)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return fmt.Errorf("route %s -> %s: %w %q: %s: write a jsonpath predicate, e.g. '%s'",
			r.Event, r.Kind, ErrInvalidWhere, r.Where, oneLine(pgErr.Message), WhereExample)
	case err != nil:
		return fmt.Errorf("route %s -> %s: check filter: %w", r.Event, r.Kind, err)
	case predicate:
		return nil
	}
	// Not a predicate: the server says why when asked for a boolean.
	why := "it selects items rather than testing the row"
	if err := s.db.QueryRow(ctx, matchEmptySQL, r.Where).Scan(new(*bool)); errors.As(err, &pgErr) {
		why = oneLine(pgErr.Message)
	}
	return fmt.Errorf("route %s -> %s: %w %q is not a predicate (%s): compare, e.g. '%s'",
		r.Event, r.Kind, ErrInvalidWhere, r.Where, why, WhereExample)
}

// oneLine joins the lines of a server's message.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// upsert writes a validated route.
func (s *Store) upsert(ctx context.Context, r Route) error {
	r = r.withDefaults()
	_, err := s.db.Exec(ctx, s.sql(upsertRouteSQL), r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts, nullIfEmpty(r.Where),
		nullIfEmpty(r.OrderedBy), cmp.Or(r.OnFailure, OnFailureContinue), r.Webhook, nullIfEmpty(r.SecretEnv))
	if err != nil {
		return fmt.Errorf("add route %s -> %s: %w", r.Event, r.Kind, err)
	}
	return nil
}

// nullIfEmpty is s, or NULL for the empty string.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Ensure adds or updates every route given, after validating all of them, so
// that a worker process can declare its routes at start-up. Routes not given
// are left as they are. Pass a transaction to make it all or nothing.
func (s *Store) Ensure(ctx context.Context, rs ...Route) error {
	for _, r := range rs {
		if err := s.validate(ctx, r); err != nil {
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
		if err := s.validate(ctx, r); err != nil {
			return nil, err
		}
	}
	var added []Route
	for _, r := range rs {
		r = r.withDefaults()
		tag, err := s.db.Exec(ctx, s.sql(addRouteIfMissingSQL), r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts, nullIfEmpty(r.Where),
			nullIfEmpty(r.OrderedBy), cmp.Or(r.OnFailure, OnFailureContinue), r.Webhook, nullIfEmpty(r.SecretEnv))
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
// A webhook route is removed with RemoveWebhook.
func (s *Store) Remove(ctx context.Context, event, kind string) (bool, error) {
	tag, err := s.db.Exec(ctx, s.sql(removeRouteSQL), event, kind, "")
	if err != nil {
		return false, fmt.Errorf("remove route %s -> %s: %w", event, kind, err)
	}
	return tag.RowsAffected() > 0, nil
}

// RemoveWebhook deletes the webhook route from event to url and reports
// whether it existed.
func (s *Store) RemoveWebhook(ctx context.Context, event, url string) (bool, error) {
	tag, err := s.db.Exec(ctx, s.sql(removeRouteSQL), event, WebhookKind, strings.TrimSpace(url))
	if err != nil {
		return false, fmt.Errorf("remove webhook route %s -> %s: %w", event, webhook.Redact(url), err)
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
		err := row.Scan(&r.Event, &r.Kind, &r.Queue, &r.Priority, &r.MaxAttempts, &r.Where, &r.OrderedBy, &r.OnFailure, &r.Webhook, &r.SecretEnv)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	return out, nil
}
