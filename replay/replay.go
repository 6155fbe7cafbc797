package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
)

// Selector selects events the bridge has recorded (dispatched,
// unrouted, missing or rejected) to dispatch again. Its fields combine: an
// event is selected when it matches every field that is set. At least one
// must be set.
type Selector struct {
	// IDs are event ids.
	IDs []string `json:"ids,omitempty"`
	// FromID and ToID bound the id, inclusive, compared as values of the id
	// column's type: numbers for smallint, integer and bigint, uuids, and
	// text in the column's collation. Either may be empty. Events whose row
	// is gone are not selected by a range.
	FromID string `json:"from_id,omitempty"`
	ToID   string `json:"to_id,omitempty"`
	// Names are event names.
	Names []string `json:"names,omitempty"`
	// Since and Until bound when the event was dispatched: Since <= t < Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Outcomes are the outcomes recorded at dispatch: dispatched, unrouted,
	// missing, rejected.
	Outcomes []string `json:"outcomes,omitempty"`
	// JobStates selects events whose newest job of a handler is in one of
	// these River states (e.g. discarded, cancelled); with
	// Options.Handlers, of one of those handlers.
	JobStates []string `json:"job_states,omitempty"`
	// Jobs selects the events of these jobs, and replays each event only
	// for the handlers of its listed jobs (how dead letters are retried).
	Jobs []int64 `json:"jobs,omitempty"`
}

func (s Selector) empty() bool {
	return len(s.IDs) == 0 && s.FromID == "" && s.ToID == "" && len(s.Names) == 0 && s.Since.IsZero() &&
		s.Until.IsZero() && len(s.Outcomes) == 0 && len(s.JobStates) == 0 && len(s.Jobs) == 0
}

// Options say how to replay.
type Options struct {
	// Handlers, when not empty, limits the new jobs to these handler kinds.
	// Each must have a route for the name of at least one selected event.
	Handlers []string
	// DryRun computes what would be enqueued and changes nothing.
	DryRun bool
	// Reason says why, for the record. Required unless DryRun.
	Reason string
	// RequestedBy says who, for the record (e.g. user@host).
	RequestedBy string
	// IgnoreFilters makes a job for every route of the event's name (to
	// the chosen handlers), whatever the routes' filters say of its row.
	// By default a replay applies today's filters to the row as it is now,
	// as the bridge does at dispatch. The replay's record says which.
	// Filters are never applied to the handlers of Selector.Jobs: those
	// jobs were made, so their filters had matched (or were ignored).
	IgnoreFilters bool
	// BatchSize is how many events one transaction replays; 0 means
	// Config.BatchSize.
	BatchSize int
	// Progress, when set, is called after each batch.
	Progress func(Progress)
	// PlanLimit caps Result.Planned and Result.Skipped; 0 means
	// no cap. The counts are never capped.
	PlanLimit int
}

// Progress is how far a replay has got.
type Progress struct {
	Selected int // events selected in all (the snapshot)
	Done     int // events handled so far: enqueued for or skipped
	Jobs     int // jobs enqueued (or, in a dry run, planned) so far
	Skipped  int // events skipped so far
}

// PlannedEvent is one event a replay enqueues jobs for.
type PlannedEvent struct {
	EventID   string   `json:"event_id"`
	EventName string   `json:"event_name"`
	Handlers  []string `json:"handlers"`
	// Filtered are the handlers whose route's filter skipped the event.
	Filtered []string `json:"filtered,omitempty"`
}

// SkipCause says in one word why a selected event got no job.
type SkipCause string

// The causes of a skipped event.
const (
	// SkipInvalidID: the recorded id is not an id of the events table (a
	// payload recorded as rejected).
	SkipInvalidID SkipCause = "invalid_id"
	// SkipNoRow: the events table has no row with the id (any more).
	SkipNoRow SkipCause = "no_row"
	// SkipNullName: the row's name column is NULL.
	SkipNullName SkipCause = "null_name"
	// SkipNoRoute: no route for the event's name (to the chosen handlers).
	SkipNoRoute SkipCause = "no_route"
	// SkipFiltered: the filters of all its routes (to the chosen
	// handlers) skipped the event's row.
	SkipFiltered SkipCause = "filtered"
)

// SkippedEvent is one selected event a replay could not enqueue jobs for.
type SkippedEvent struct {
	EventID string    `json:"event_id"`
	Cause   SkipCause `json:"cause"`
	Reason  string    `json:"reason"`
}

// Result says what a replay did, or in a dry run would do. Its figures
// are about the snapshot of ids the selector matched when the replay began:
// once it has finished, Selected = Events + SkippedCount, Jobs is the sum of
// JobsByHandler and SkippedCount the sum of SkippedByCause, whatever was
// dispatched meanwhile.
type Result struct {
	// ReplayID is the replay's row in notified_replay (0 in a dry run).
	ReplayID int64 `json:"replay_id"`
	DryRun   bool  `json:"dry_run"`
	// Selected is how many events the selector matched.
	Selected int `json:"selected"`
	// FiltersApplied says whether the routes' filters chose the handlers
	// (see Options.IgnoreFilters).
	FiltersApplied bool `json:"filters_applied"`
	// FilteredJobs is how many jobs the filters skipped in the events that
	// got other jobs; the events they skipped entirely are counted in
	// SkippedByCause[SkipFiltered].
	FilteredJobs int `json:"filtered_jobs"`
	// Events is how many of them got jobs, and Jobs how many jobs.
	Events int `json:"events"`
	Jobs   int `json:"jobs"`
	// JobsByHandler is how many jobs each handler kind got.
	JobsByHandler map[string]int `json:"jobs_by_handler"`
	// Planned lists the events that got jobs and their handlers (up to
	// Options.PlanLimit).
	Planned []PlannedEvent `json:"planned"`
	// Skipped lists the events that got none, with why (up to PlanLimit).
	Skipped      []SkippedEvent `json:"skipped"`
	SkippedCount int            `json:"skipped_count"`
	// SkippedByCause is how many events were skipped for each cause.
	SkippedByCause map[SkipCause]int `json:"skipped_by_cause"`
	Took           float64           `json:"took_seconds"`
}

// ErrNothingSelected is returned by Run for a selector with no field set.
var ErrNothingSelected = errors.New("no events selected")

// ErrNoReason is returned by Run, unless it is a dry run, when
// Options.Reason is empty.
var ErrNoReason = errors.New("a replay needs a reason, for the record")

// SelectorError says that a field of the Selector is not valid.
type SelectorError struct {
	// Field is the field's name: IDs, FromID or ToID.
	Field string
	// Err says what is wrong with its value.
	Err error
}

func (e *SelectorError) Error() string { return "Selector." + e.Field + ": " + e.Err.Error() }

func (e *SelectorError) Unwrap() error { return e.Err }

// ErrNothingToReplay is matched (errors.Is) by the *NothingToReplayError
// Run returns when it would enqueue no job at all.
var ErrNothingToReplay = errors.New("nothing to replay")

// ErrUnknownHandler is matched (errors.Is) by the *UnknownHandlerError
// Run returns for a handler that would get no job.
var ErrUnknownHandler = errors.New("unknown handler")

// NothingToReplayError says that a replay enqueued, or in a dry run would
// enqueue, no job: the selector matched no recorded event, or every event it
// matched was skipped. Nothing is recorded in notified_replay.
type NothingToReplayError struct {
	// Channel is the channel whose records were searched.
	Channel string
	// Selected is how many recorded events the selector matched (0: none).
	Selected int
	// Skipped is, when Selected > 0, why they were skipped: events by cause.
	Skipped map[SkipCause]int
}

func (e *NothingToReplayError) Error() string {
	if e.Selected == 0 {
		return fmt.Sprintf("%s: the selector matches no event recorded on channel %q", ErrNothingToReplay, e.Channel)
	}
	causes := make([]string, 0, len(e.Skipped))
	for _, c := range slices.Sorted(maps.Keys(e.Skipped)) {
		causes = append(causes, fmt.Sprintf("%s %d", c, e.Skipped[c]))
	}
	return fmt.Sprintf("%s: all %d selected events were skipped (%s)", ErrNothingToReplay, e.Selected, strings.Join(causes, ", "))
}

// Is makes errors.Is(err, ErrNothingToReplay) hold.
func (e *NothingToReplayError) Is(target error) bool { return target == ErrNothingToReplay }

// UnknownHandlerError says that a handler of Options.Handlers would get
// no job: no route has its kind, or no route sends the names of the selected
// events to it. Run checks before it enqueues or records anything.
type UnknownHandlerError struct {
	// Handler is the kind.
	Handler string
	// Selected is how many events the selector matched, and Names their
	// distinct names (sorted), when the handler has routes but none for
	// these names; both are empty when no route has the handler at all.
	Selected int
	Names    []string
}

func (e *UnknownHandlerError) Error() string {
	if e.Selected == 0 {
		return fmt.Sprintf("%s: no route has handler %q (Options.Handlers)", ErrUnknownHandler, e.Handler)
	}
	return fmt.Sprintf("%s: handler %q (Options.Handlers) has no route for the names of the %d selected events (%s)",
		ErrUnknownHandler, e.Handler, e.Selected, strings.Join(e.Names, ", "))
}

// Is makes errors.Is(err, ErrUnknownHandler) hold.
func (e *UnknownHandlerError) Is(target error) bool { return target == ErrUnknownHandler }

// Run dispatches the selected events again as new jobs, one per route the
// event's name has today (limited to opts.Handlers), whatever their outcome
// when they arrived: an event that was unrouted gets the routes added since.
// The event's row is read again from the events table. The replay is
// recorded in notified_replay, and its jobs carry its id in their metadata,
// so the history shows who replayed what, when and why.
//
// It goes in steps:
//
//  1. Check the selector and options, and that every handler of
//     opts.Handlers has a route (else *UnknownHandlerError).
//  2. Take the snapshot: one statement reads the ids of the recorded events
//     the selector matches. Every figure of the result is about these ids;
//     events dispatched while the replay runs are not in it. None matched:
//     *NothingToReplayError.
//  3. With opts.Handlers, check that each handler has a route for the name
//     of at least one selected event (else *UnknownHandlerError).
//  4. In batches of opts.BatchSize ids, in the id column's order: read the
//     rows again, route them, and in one transaction insert their jobs. The
//     first batch that has jobs records the replay; each batch records how
//     far it got, so an interrupted replay keeps the batches it committed,
//     and its record says so (finished_at stays NULL).
//  5. If no batch had a job, nothing was recorded: *NothingToReplayError,
//     with the result saying why each event was skipped.
//
// A dry run takes the same steps and changes nothing.
func Run(ctx context.Context, pool *pgxpool.Pool, cfg bridge.Config, sel Selector, opts Options) (*Result, error) {
	start := time.Now()
	r, err := newReplayer(ctx, pool, cfg, sel, opts)
	if err != nil {
		return nil, err
	}
	res, err := r.run(ctx)
	if res != nil {
		res.Took = time.Since(start).Seconds()
	}
	return res, err
}

// jobStates are River's job states.
var jobStates = []string{"available", "cancelled", "completed", "discarded", "pending", "retryable", "running", "scheduled"}

type replayer struct {
	cfg   bridge.Config
	pool  *pgxpool.Pool
	table *eventstable.Table
	sel   Selector
	opts  Options
	q     replayQueries
	river *river.Client[pgx.Tx]

	// snapshot selects the ids, with args, and their rows' names when
	// snapshotNames.
	snapshot      string
	args          pgx.NamedArgs
	snapshotNames bool
	jobKinds      map[string][]string // event id -> handlers (see handlerOf), from sel.Jobs

	routes map[string][]routes.Route // event name -> routes to the chosen handlers

	startedAt time.Time // by the database's clock
	replayID  int64     // 0 until a batch records the replay
}

// newReplayer checks the selector and options and builds the snapshot query.
func newReplayer(ctx context.Context, pool *pgxpool.Pool, cfg bridge.Config, sel Selector, opts Options) (*replayer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sel.empty() {
		return nil, fmt.Errorf("%w: choose events by id, id range, name, time, outcome, job state or job", ErrNothingSelected)
	}
	if !opts.DryRun && strings.TrimSpace(opts.Reason) == "" {
		return nil, fmt.Errorf("%w: set Options.Reason (not needed for a DryRun)", ErrNoReason)
	}
	for _, o := range sel.Outcomes {
		switch o {
		case history.OutcomeDispatched, history.OutcomeUnrouted, history.OutcomeMissing, history.OutcomeRejected:
		default:
			return nil, fmt.Errorf("outcome %q is not one of dispatched, unrouted, missing, rejected", o)
		}
	}
	for _, s := range sel.JobStates {
		if !slices.Contains(jobStates, s) {
			return nil, fmt.Errorf("job state %q is not one of %s", s, strings.Join(jobStates, ", "))
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && !sel.Since.Before(sel.Until) {
		return nil, fmt.Errorf("time range is empty: since %s is not before until %s", sel.Since.Format(time.RFC3339), sel.Until.Format(time.RFC3339))
	}
	if err := migrations.Check(ctx, pool, cfg.Schema); err != nil {
		return nil, err
	}
	table, err := eventstable.Spec{Table: cfg.Table, IDColumn: cfg.IDColumn, NameColumn: cfg.NameColumn}.Inspect(ctx, pool)
	if err != nil {
		return nil, err
	}
	r := &replayer{cfg: cfg, pool: pool, table: table, sel: sel, opts: opts, q: newReplayQueries(cfg.Schema, table)}
	if r.opts.BatchSize <= 0 {
		r.opts.BatchSize = cfg.BatchSize
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *replayer) run(ctx context.Context) (*Result, error) {
	// 1. Every handler has a route. The routes read here serve the whole
	// replay, so that what steps 1 and 3 check is what the batches do.
	all, err := routes.NewStore(r.pool, r.cfg.Schema).List(ctx)
	if err != nil {
		return nil, err
	}
	r.routes = map[string][]routes.Route{}
	for _, rt := range all {
		if len(r.opts.Handlers) == 0 || slices.Contains(r.opts.Handlers, rt.Kind) {
			r.routes[rt.Event] = append(r.routes[rt.Event], rt)
		}
	}
	for _, h := range r.opts.Handlers {
		if !slices.ContainsFunc(all, func(rt routes.Route) bool { return rt.Kind == h }) {
			return nil, &UnknownHandlerError{Handler: h}
		}
	}
	if !r.opts.DryRun {
		if err := r.pool.QueryRow(ctx, "SELECT now()").Scan(&r.startedAt); err != nil {
			return nil, fmt.Errorf("read the database's clock: %w", err)
		}
	}

	// 2. The snapshot.
	keys, names, err := r.takeSnapshot(ctx, len(r.opts.Handlers) > 0)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, &NothingToReplayError{Channel: r.cfg.Channel}
	}

	// 3. Every handler has a route for some selected event, by the names
	// the events' rows have now.
	for _, h := range r.opts.Handlers {
		if !slices.ContainsFunc(all, func(rt routes.Route) bool { return rt.Kind == h && slices.Contains(names, rt.Event) }) {
			return nil, &UnknownHandlerError{Handler: h, Selected: len(keys), Names: names}
		}
	}

	// 4. Batches.
	res := &Result{DryRun: r.opts.DryRun, Selected: len(keys), FiltersApplied: r.filtersApplied(), JobsByHandler: map[string]int{},
		Planned: []PlannedEvent{}, Skipped: []SkippedEvent{}, SkippedByCause: map[SkipCause]int{}}
	if !r.opts.DryRun {
		client, err := river.NewClient(riverpgxv5.New(r.pool), &river.Config{Schema: r.cfg.Schema, Logger: r.cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("river client: %w", err)
		}
		r.river = client
	}
	for done := 0; done < len(keys); {
		batch := keys[done:min(done+r.opts.BatchSize, len(keys))]
		if err := r.batch(ctx, batch, res); err != nil {
			res.ReplayID = r.replayID
			return res, err
		}
		done += len(batch)
		if r.opts.Progress != nil {
			r.opts.Progress(Progress{Selected: res.Selected, Done: done, Jobs: res.Jobs, Skipped: res.SkippedCount})
		}
	}

	// 5. Nothing enqueued: nothing was recorded.
	if res.Jobs == 0 {
		return res, &NothingToReplayError{Channel: r.cfg.Channel, Selected: res.Selected, Skipped: maps.Clone(res.SkippedByCause)}
	}
	if !r.opts.DryRun {
		if _, err := r.pool.Exec(ctx, r.q.finish, r.replayID); err != nil {
			return res, fmt.Errorf("record end of replay %d: %w", r.replayID, err)
		}
	}
	return res, nil
}

// row is an event's row as a batch reads it: its name and, unless in a dry
// run, its data.
type row struct {
	name    *string
	data    []byte
	filters string    // the results of the filters of its name's routes (see jobparams.ApplyFilters)
	keys    []*string // the lane keys of its name's ordered routes (see jobparams.Lanes)
}

// plannedJobs is one event of a batch that gets jobs.
type plannedJobs struct {
	id, name string
	data     []byte
	routes   []routes.Route
	lanes    []string // per route, its job's lane key ("" for none); nil when none is ordered
	filtered []string // the handlers whose filter skipped it
}

// filtersApplied says whether the routes' filters choose the handlers.
func (r *replayer) filtersApplied() bool { return !r.opts.IgnoreFilters && r.jobKinds == nil }

// batch replays one batch of events, in one transaction unless it is a dry
// run. If it fails, res is left as it was.
func (r *replayer) batch(ctx context.Context, keys []string, res *Result) error {
	if r.opts.DryRun {
		planned, skipped, err := r.plan(ctx, r.pool, keys)
		if err != nil {
			return err
		}
		r.tally(res, planned, skipped)
		return nil
	}

	var planned []plannedJobs
	var skipped []SkippedEvent
	recorded := r.replayID != 0
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		if planned, skipped, err = r.plan(ctx, tx, keys); err != nil {
			return err
		}
		if len(planned) == 0 && r.replayID == 0 {
			return nil // nothing to record yet
		}
		events, jobCount := res.Events+len(planned), res.Jobs
		var params, orderedParams []river.InsertManyParams
		var lanes []jobparams.LaneEntry
		for _, p := range planned {
			jobCount += len(p.routes)
		}
		skippedCount := res.SkippedCount + len(skipped)
		if r.replayID == 0 {
			selJSON, err := json.Marshal(r.sel)
			if err != nil {
				return fmt.Errorf("encode selector: %w", err)
			}
			var handlers []string
			if len(r.opts.Handlers) > 0 {
				handlers = r.opts.Handlers
			}
			if err := tx.QueryRow(ctx, r.q.record, r.cfg.Channel, r.opts.RequestedBy, r.opts.Reason, selJSON, handlers,
				r.startedAt, !r.filtersApplied()).Scan(&r.replayID); err != nil {
				return fmt.Errorf("record replay: %w", err)
			}
		}
		// Ordered jobs join the end of their lanes: their lanes are opened
		// (created or locked) first, which says which job is a head.
		for _, p := range planned {
			_, ordered, keys := jobparams.SplitOrdered(p.routes, p.lanes)
			for i, rt := range ordered {
				lanes = append(lanes, jobparams.LaneEntry{Kind: rt.Kind, Key: keys[i], Stop: rt.OnFailure == routes.OnFailureStop})
			}
		}
		if err := jobparams.OpenLanes(ctx, tx, r.q.openLanes, r.cfg.Channel, lanes); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		next := 0
		for _, p := range planned {
			src := jobs.Source{EventID: p.id, EventName: p.name, Channel: r.cfg.Channel, ReplayID: r.replayID}
			var err error
			unordered, ordered, keys := jobparams.SplitOrdered(p.routes, p.lanes)
			if params, err = jobparams.Append(params, src, p.data, unordered, nil, nil); err != nil {
				return err
			}
			heads := make([]bool, len(ordered))
			for i := range ordered {
				heads[i] = lanes[next].Head
				next++
			}
			if orderedParams, err = jobparams.Append(orderedParams, src, p.data, ordered, keys, heads); err != nil {
				return err
			}
		}
		if len(params) > 0 {
			n, err := r.river.InsertManyFastTx(ctx, tx, params)
			if err != nil {
				return fmt.Errorf("insert %d replayed jobs: %w", len(params), err)
			}
			if n != len(params) {
				return fmt.Errorf("insert %d replayed jobs: River inserted %d", len(params), n)
			}
		}
		if len(orderedParams) > 0 {
			results, err := r.river.InsertManyTx(ctx, tx, orderedParams)
			if err != nil {
				return fmt.Errorf("insert %d replayed ordered jobs: %w", len(orderedParams), err)
			}
			for i, res := range results {
				lanes[i].JobID = res.Job.ID
			}
			if err := jobparams.AppendLanes(ctx, tx, r.q.appendLanes, r.cfg.Channel, lanes); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, r.q.progress, r.replayID, events, jobCount, skippedCount); err != nil {
			return fmt.Errorf("record progress of replay %d: %w", r.replayID, err)
		}
		return nil
	})
	if err != nil {
		if !recorded {
			r.replayID = 0 // the record was rolled back with the batch
		}
		return err
	}
	res.ReplayID = r.replayID
	r.tally(res, planned, skipped)
	return nil
}

// plan reads the rows of a batch's ids and decides which
// events get which jobs and which are skipped, and why. In a dry run only
// the rows' names are read.
func (r *replayer) plan(ctx context.Context, db dbtx.DBTX, keys []string) ([]plannedJobs, []SkippedEvent, error) {
	var skipped []SkippedEvent
	skip := func(id string, cause SkipCause, reason string) {
		skipped = append(skipped, SkippedEvent{EventID: id, Cause: cause, Reason: reason})
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, err := r.table.ParseID(k); err != nil {
			skip(k, SkipInvalidID, "not a valid id: "+err.Error())
			continue
		}
		ids = append(ids, k)
	}
	found := make(map[string]row, len(ids))
	if len(ids) > 0 {
		query := r.q.rows
		if r.opts.DryRun {
			query = r.q.rowNames
		}
		names, paths := []string{}, []string{}
		if r.filtersApplied() {
			names, paths = jobparams.FilterArgs(r.routes)
		}
		keyNames, keyPaths := jobparams.KeyArgs(r.routes)
		rows, err := db.Query(ctx, query, ids, names, paths, keyNames, keyPaths)
		if err != nil {
			return nil, nil, fmt.Errorf("fetch events from %s: %w", r.table.Display, err)
		}
		var id string
		var ev row
		if _, err := pgx.ForEachRow(rows, []any{&id, &ev.name, &ev.data, &ev.filters, &ev.keys}, func() error {
			found[id] = row{name: ev.name, data: slices.Clone(ev.data), filters: ev.filters, keys: ev.keys}
			return nil
		}); err != nil {
			return nil, nil, fmt.Errorf("fetch events from %s: %w", r.table.Display, err)
		}
	}
	var planned []plannedJobs
	for _, id := range ids {
		ev, ok := found[id]
		switch {
		case !ok:
			skip(id, SkipNoRow, r.table.NoRowReason(id))
			continue
		case ev.name == nil:
			skip(id, SkipNullName, r.table.NullNameReason())
			continue
		}
		var chosen []routes.Route
		var filtered []string
		if r.filtersApplied() {
			all := r.routes[*ev.name]
			var skipped []string
			chosen, skipped = jobparams.ApplyFilters(all, ev.filters)
			for i, why := range skipped {
				if why != "" {
					filtered = append(filtered, all[i].Kind)
				}
			}
		} else {
			for _, rt := range r.routes[*ev.name] {
				if r.jobKinds == nil || slices.Contains(r.jobKinds[id], handlerOf(rt.Kind, rt.Webhook)) {
					chosen = append(chosen, rt)
				}
			}
		}
		if len(chosen) == 0 && len(filtered) > 0 {
			skip(id, SkipFiltered, fmt.Sprintf("the filters of its routes skipped the row (%s): replay ignoring filters to make their jobs", strings.Join(filtered, ", ")))
			continue
		}
		if len(chosen) == 0 {
			reason := eventstable.NoRouteReason(*ev.name)
			if len(r.opts.Handlers) > 0 || r.jobKinds != nil {
				reason = fmt.Sprintf("event name %q has no route to the chosen handlers", *ev.name)
			}
			skip(id, SkipNoRoute, reason)
			continue
		}
		planned = append(planned, plannedJobs{id: id, name: *ev.name, data: ev.data, routes: chosen,
			lanes: jobparams.Lanes(r.routes[*ev.name], chosen, ev.keys), filtered: filtered})
	}
	return planned, skipped, nil
}

// tally adds a batch's events to res.
func (r *replayer) tally(res *Result, planned []plannedJobs, skipped []SkippedEvent) {
	room := func(n int) bool { return r.opts.PlanLimit <= 0 || n < r.opts.PlanLimit }
	for _, p := range planned {
		res.Events++
		res.Jobs += len(p.routes)
		handlers := make([]string, len(p.routes))
		for i, rt := range p.routes {
			handlers[i] = rt.Kind
			res.JobsByHandler[rt.Kind]++
		}
		res.FilteredJobs += len(p.filtered)
		if room(len(res.Planned)) {
			res.Planned = append(res.Planned, PlannedEvent{EventID: p.id, EventName: p.name, Handlers: handlers, Filtered: p.filtered})
		}
	}
	for _, s := range skipped {
		res.SkippedCount++
		res.SkippedByCause[s.Cause]++
		if room(len(res.Skipped)) {
			res.Skipped = append(res.Skipped, s)
		}
	}
}
