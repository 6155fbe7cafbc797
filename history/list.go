package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// The queries of List, JobEvent and ReplayJobs. {schema}. stands for the
// store's schema (see dbtx.InSchema); every value is a parameter.

// listEventsSQL lists the events of channel @channel, newest dispatch
// first, at most @limit. listQuery fills {filters}; each filter that is on
// adds its condition, so that each combination is a query of its own whose
// plan serves the index of its filters (see deadLettersQuery). The order,
// (dispatched_at, event_id) descending, is the order of the indexes the
// filters use, so a page reads about @limit index entries however deep it
// is (keyset paging: the page after a row starts below it, never at an
// OFFSET).
const listEventsSQL = `SELECT d.event_id, d.event_name, d.outcome, d.reason, d.notified_at, d.dispatched_at, d.jobs
	FROM {schema}.notified_dispatch d
	WHERE d.channel = @channel{filters}
	ORDER BY d.dispatched_at DESC, d.event_id DESC
	LIMIT @limit`

// The conditions of listEventsSQL's filters.
const (
	// listAfter keeps the events after the cursor, in the page order. The
	// first condition bounds the index scan; the row comparison breaks ties.
	listAfter = "\n\t  AND d.dispatched_at <= @after_at AND (d.dispatched_at, d.event_id) < (@after_at, @after_id)"
	// listName keeps the events named @name (index notified_dispatch_name).
	listName = "\n\t  AND d.event_name = @name"
	// listOutcome keeps the events whose outcome is @outcome; an equality,
	// so that the index on (channel, outcome, dispatched_at) gives the
	// order.
	listOutcome = "\n\t  AND d.outcome = @outcome"
	// listOutcomes keeps the events whose outcome is one of @outcomes.
	listOutcomes = "\n\t  AND d.outcome = ANY(@outcomes)"
	// listNotDispatched is added when @outcomes lacks dispatched: it lets
	// the planner use the partial index notified_dispatch_not_dispatched,
	// which a parameter alone cannot prove it may.
	listNotDispatched = "\n\t  AND d.outcome <> 'dispatched'"
	// listSince and listUntil bound the dispatch time: since <= t < until.
	listSince = "\n\t  AND d.dispatched_at >= @since"
	listUntil = "\n\t  AND d.dispatched_at < @until"
	// listHandler keeps the events @handler got a job for when
	// dispatched: routed to it (the containment, quick to refuse) and not
	// skipped by its route's filter (an entry of the kind with no
	// "skipped": webhook routes share their kind, and one URL's job is
	// enough).
	listHandler = "\n\t  AND d.jobs @> jsonb_build_array(jsonb_build_object('kind', @handler::text))" +
		"\n\t  AND jsonb_path_exists(d.jobs, '$[*] ? (@.kind == $h && !exists(@.skipped))', jsonb_build_object('h', @handler::text))"
	// listJobStatesCommon keeps the events that have a job (of @handler,
	// when set) in one of the states @states, looked up event by event as
	// the list's index scan reads them: for the states most jobs are in
	// (completed), where most events match. OFFSET 0 keeps Postgres from
	// hashing every such job first; the state compared as text keeps it
	// from reading River's jobs by state rather than by event (the index on
	// metadata).
	listJobStatesCommon = `
	  AND (EXISTS (SELECT 1 FROM {schema}.notified_job n
			WHERE n.channel = d.channel AND n.event_id = d.event_id AND n.state = ANY(@states){n_kind}
			  AND NOT EXISTS (SELECT 1 FROM {schema}.river_job x WHERE x.id = n.job_id) OFFSET 0)
	    OR EXISTS (SELECT 1 FROM {schema}.river_job j
			WHERE j.metadata @> jsonb_build_object('notified', jsonb_build_object('channel', d.channel, 'event_id', d.event_id))
			  AND j.state::text = ANY(@states){j_kind} OFFSET 0))`
)

// listRareStatesSQL is listEventsSQL for the states of trouble, which
// few jobs are in (all but completed): it finds those jobs first, from
// their state (River's index on state; notified_job_trouble for the jobs
// River has deleted), then their events by primary key, and sorts them.
// Its cost grows with the number of such jobs, not of events. OFFSET 0
// keeps each event's lookup by primary key: flattened into a join, with
// the few jobs underestimated (no statistics after a bulk load), Postgres
// would rather walk every event in list order and compare each with every
// such job (2.7-8.8 s with 4,000 discarded jobs among 1,000,000).
const listRareStatesSQL = `WITH ev AS MATERIALIZED (
		SELECT j.metadata->'notified'->>'event_id' AS event_id FROM {schema}.river_job j
		WHERE j.state = ANY(@states::text[]::{schema}.river_job_state[])
		  AND j.metadata->'notified'->>'channel' = @channel{j_kind}
		UNION
		SELECT n.event_id FROM {schema}.notified_job n
		WHERE n.channel = @channel AND n.state = ANY(@states) AND n.state <> 'completed'{n_kind}
		  AND NOT EXISTS (SELECT 1 FROM {schema}.river_job x WHERE x.id = n.job_id))
	SELECT d.event_id, d.event_name, d.outcome, d.reason, d.notified_at, d.dispatched_at, d.jobs
	FROM ev CROSS JOIN LATERAL (SELECT * FROM {schema}.notified_dispatch d
		WHERE d.channel = @channel AND d.event_id = ev.event_id{filters} OFFSET 0) d
	ORDER BY d.dispatched_at DESC, d.event_id DESC
	LIMIT @limit`

// listPlanSQL sets, for the list's transaction, how Postgres plans it:
// a plan that reads an index in the list's order and stops at the page's
// end, rather than one that sorts every match, whatever the statistics
// say (a table loaded in bulk may have none yet), and no parallel workers
// for a page of rows.
const listPlanSQL = `SELECT set_config('enable_sort', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`

// listRarePlanSQL sets, for the transaction of listRareStatesSQL, that
// River's jobs of those states are read through an index on their state,
// never by a scan of River's table: after ANALYZE a state no sampled job was
// in is still estimated at thousands of jobs, and a parallel scan of a
// million jobs looked cheaper (0.4-1.5 s, against a millisecond by the
// index).
const listRarePlanSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`

// jobEventSQL returns the channel and event of job $1, live in River or
// recorded after River deleted it.
const jobEventSQL = `SELECT channel, event_id FROM {schema}.notified_jobs WHERE job_id = $1`

// replayJobsSQL lists the jobs replay $1 created that River still has,
// oldest first: id, kind, event id and state.
const replayJobsSQL = `SELECT j.id, j.kind, j.metadata->'notified'->>'event_id', j.state::text
	FROM {schema}.river_job j
	WHERE j.metadata @> jsonb_build_object('notified', jsonb_build_object('replay_id', $1::bigint))
	ORDER BY j.id`

// Cursor is where a page of List ends: the last event's dispatch time and
// id. The next page starts after it.
type Cursor struct {
	DispatchedAt time.Time `json:"dispatched_at"`
	EventID      string    `json:"event_id"`
}

// EventFilter selects the events List returns. Empty fields select
// everything.
type EventFilter struct {
	// Channel is the channel whose events are listed.
	Channel string
	// Name keeps the events of this name.
	Name string
	// Outcomes keeps the events of these outcomes at dispatch: dispatched,
	// unrouted, missing, rejected.
	Outcomes []string
	// Since and Until bound the dispatch time: Since <= t < Until.
	Since, Until time.Time
	// Handler keeps the events this handler kind got a job for when they
	// were dispatched (routed to it, and not skipped by its route's
	// filter); with JobStates, it narrows the jobs to its own.
	Handler string
	// JobStates keeps the events with a job in one of these River states
	// (e.g. discarded, retryable).
	JobStates []string
	// After, when set, starts the page after this event (the Next of the
	// page before).
	After *Cursor
	// Limit is the page size: 50 when 0, at most 500.
	Limit int
}

// EventSummary is one event of a list: its dispatch record.
type EventSummary struct {
	ID           string    `json:"event_id"`
	Name         *string   `json:"event_name"`
	Outcome      string    `json:"outcome"`
	Reason       *string   `json:"reason"`
	NotifiedAt   time.Time `json:"notified_at"`
	DispatchedAt time.Time `json:"dispatched_at"`
	Routes       []Route   `json:"routes"`
	// Cursor is where a page that ends with this event ends.
	Cursor Cursor `json:"-"`
}

// JobBrief is a job's id, kind, event and state.
type JobBrief struct {
	ID      int64  `json:"job_id"`
	Handler string `json:"handler"`
	EventID string `json:"event_id"`
	State   string `json:"state"`
}

// EventPage is a page of events, newest first.
type EventPage struct {
	Events []EventSummary `json:"events"`
	// Next starts the following page; nil on the last page.
	Next *Cursor `json:"next"`
}

// ErrBadFilter is wrapped by the errors of List for a filter that cannot
// select anything.
var ErrBadFilter = errors.New("invalid filter")

// The page sizes of List.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// outcomes are the outcomes a dispatch record can have.
var outcomes = []string{OutcomeDispatched, OutcomeUnrouted, OutcomeMissing, OutcomeRejected}

// JobStates are River's job states, as EventFilter.JobStates takes them.
var JobStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

// List returns a page of the events recorded on f.Channel that match f,
// newest dispatch first. It pages by keyset: f.After is the Next of the
// previous page, and a page deep in millions of events costs what the
// first does.
func (s *Store) List(ctx context.Context, f EventFilter) (*EventPage, error) {
	q, args, plan, err := listQuery(s.schema, f)
	if err != nil {
		return nil, err
	}
	limit := args["limit"].(int64) - 1
	var events []EventSummary
	read := func(db DB) error {
		if _, err := db.Exec(ctx, plan); err != nil {
			return fmt.Errorf("list events: set the plan: %w", err)
		}
		rows, err := db.Query(ctx, q, args)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		events, err = pgx.CollectRows(rows, scanSummary)
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		return nil
	}
	// The plan settings last until the transaction ends: one of its own,
	// or a savepoint of the caller's.
	if b, ok := s.db.(dbtx.Beginner); ok {
		err = pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error { return read(tx) })
	} else {
		err = read(s.db)
	}
	if err != nil {
		return nil, err
	}
	page := &EventPage{Events: events}
	if int64(len(events)) > limit {
		page.Events = events[:limit]
		next := page.Events[limit-1].Cursor
		page.Next = &next
	}
	return page, nil
}

// scanSummary reads a row of listEventsSQL.
func scanSummary(row pgx.CollectableRow) (EventSummary, error) {
	var e EventSummary
	var routes []byte
	if err := row.Scan(&e.ID, &e.Name, &e.Outcome, &e.Reason, &e.NotifiedAt, &e.DispatchedAt, &routes); err != nil {
		return e, err
	}
	e.Routes = []Route{}
	if err := json.Unmarshal(routes, &e.Routes); err != nil {
		return e, fmt.Errorf("decode routes of event %s: %w", e.ID, err)
	}
	e.Cursor = Cursor{DispatchedAt: e.DispatchedAt, EventID: e.ID}
	return e, nil
}

// listQuery returns listEventsSQL for the tables in schema with the
// filters of f that are on, and its arguments. It asks for one row more
// than the page, which says whether there is a next page.
//
// plan is the statement that sets, for the query's transaction, how
// Postgres plans it (listPlanSQL, listRarePlanSQL).
func listQuery(schema string, f EventFilter) (q string, args pgx.NamedArgs, plan string, err error) {
	if f.Limit < 0 || f.Limit > MaxPageSize {
		return "", nil, "", fmt.Errorf("%w: page size %d is out of range: use 1 to %d", ErrBadFilter, f.Limit, MaxPageSize)
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	args = pgx.NamedArgs{"channel": f.Channel, "limit": int64(limit + 1)}
	var filters strings.Builder
	if f.After != nil {
		filters.WriteString(listAfter)
		args["after_at"], args["after_id"] = f.After.DispatchedAt, f.After.EventID
	}
	if f.Name != "" {
		filters.WriteString(listName)
		args["name"] = f.Name
	}
	if len(f.Outcomes) > 0 {
		for _, o := range f.Outcomes {
			if !slices.Contains(outcomes, o) {
				return "", nil, "", fmt.Errorf("%w: outcome %q is not one of %s", ErrBadFilter, o, strings.Join(outcomes, ", "))
			}
		}
		if len(f.Outcomes) == 1 {
			filters.WriteString(listOutcome)
			args["outcome"] = f.Outcomes[0]
		} else {
			filters.WriteString(listOutcomes)
			args["outcomes"] = f.Outcomes
		}
		if !slices.Contains(f.Outcomes, OutcomeDispatched) {
			filters.WriteString(listNotDispatched)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return "", nil, "", fmt.Errorf("%w: time range is empty: since %s is not before until %s", ErrBadFilter,
			f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	if !f.Since.IsZero() {
		filters.WriteString(listSince)
		args["since"] = f.Since
	}
	if !f.Until.IsZero() {
		filters.WriteString(listUntil)
		args["until"] = f.Until
	}
	if f.Handler != "" && len(f.JobStates) == 0 {
		filters.WriteString(listHandler)
	}
	if f.Handler != "" {
		args["handler"] = f.Handler
	}
	q, plan = listEventsSQL, listPlanSQL
	if len(f.JobStates) > 0 {
		for _, st := range f.JobStates {
			if !slices.Contains(JobStates, st) {
				return "", nil, "", fmt.Errorf("%w: job state %q is not one of %s", ErrBadFilter, st, strings.Join(JobStates, ", "))
			}
		}
		args["states"] = f.JobStates
		if slices.Contains(f.JobStates, StateCompleted) {
			filters.WriteString(listJobStatesCommon)
		} else {
			q, plan = listRareStatesSQL, listRarePlanSQL
		}
	}
	jobKind, nKind := "", ""
	if f.Handler != "" {
		jobKind, nKind = " AND j.kind = @handler", " AND n.kind = @handler"
	}
	kinds := strings.NewReplacer("{j_kind}", jobKind, "{n_kind}", nKind)
	q = kinds.Replace(strings.Replace(q, "{filters}", filters.String(), 1))
	return dbtx.InSchema(schema, q), args, plan, nil
}

// JobEvent returns the channel and id of the event job id was created
// for, or ErrNotFound when no job of notified's has that id (live in River
// or recorded).
func (s *Store) JobEvent(ctx context.Context, id int64) (channel, eventID string, err error) {
	var ch, ev *string
	err = s.db.QueryRow(ctx, s.sql(jobEventSQL), id).Scan(&ch, &ev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", "", fmt.Errorf("%w: no job %d of notified's (River's own jobs have no event; a finished job is kept as long as the history)", ErrNotFound, id)
	case err != nil:
		return "", "", fmt.Errorf("look up job %d: %w", id, err)
	case ev == nil || *ev == "":
		return "", "", fmt.Errorf("%w: job %d names no event in its metadata", ErrNotFound, id)
	}
	if ch != nil {
		channel = *ch
	}
	return channel, *ev, nil
}

// ReplayJobs returns the jobs replay id created that River still has,
// oldest first.
func (s *Store) ReplayJobs(ctx context.Context, id int64) ([]JobBrief, error) {
	rows, err := s.db.Query(ctx, s.sql(replayJobsSQL), id)
	if err != nil {
		return nil, fmt.Errorf("list the jobs of replay %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobBrief, error) {
		var j JobBrief
		var ev *string
		err := row.Scan(&j.ID, &j.Handler, &ev, &j.State)
		if ev != nil {
			j.EventID = *ev
		}
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("list the jobs of replay %d: %w", id, err)
	}
	return out, nil
}

// replaySQL reads replay $1 of notified_replay.
const replaySQL = `SELECT id, channel, requested_by, db_user, reason, selector, handlers, events, jobs, skipped, started_at, finished_at
	FROM {schema}.notified_replay WHERE id = $1`

// Replay is a replay's record: who asked, when, why, what it selected and
// did.
type Replay struct {
	ID          int64           `json:"id"`
	Channel     string          `json:"channel"`
	RequestedBy string          `json:"requested_by"`
	DBUser      string          `json:"db_user"`
	Reason      string          `json:"reason"`
	Selector    json.RawMessage `json:"selector"`
	Handlers    []string        `json:"handlers"`
	Events      int             `json:"events"`
	Jobs        int             `json:"jobs"`
	Skipped     int             `json:"skipped"`
	StartedAt   time.Time       `json:"started_at"`
	// FinishedAt is nil while the replay runs, or when it stopped half way.
	FinishedAt *time.Time `json:"finished_at"`
}

// Replay returns the record of replay id, or ErrNotFound.
func (s *Store) Replay(ctx context.Context, id int64) (*Replay, error) {
	var r Replay
	err := s.db.QueryRow(ctx, s.sql(replaySQL), id).Scan(&r.ID, &r.Channel, &r.RequestedBy, &r.DBUser, &r.Reason,
		&r.Selector, &r.Handlers, &r.Events, &r.Jobs, &r.Skipped, &r.StartedAt, &r.FinishedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w: no replay %d (or it is past the retention)", ErrNotFound, id)
	case err != nil:
		return nil, fmt.Errorf("read replay %d: %w", id, err)
	}
	return &r, nil
}
