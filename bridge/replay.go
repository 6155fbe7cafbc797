package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
)

// ReplaySelector selects events the bridge has recorded (dispatched,
// unrouted, missing or rejected) to dispatch again. Its fields combine: an
// event is selected when it matches every field that is set. At least one
// must be set.
type ReplaySelector struct {
	// IDs are event ids.
	IDs []string `json:"ids,omitempty"`
	// FromID and ToID bound the id, inclusive, as the id column's type
	// orders it; either may be empty. Events whose row is gone are not
	// selected by a range.
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
	// ReplayOptions.Handlers, of one of those handlers.
	JobStates []string `json:"job_states,omitempty"`
	// Jobs selects the events of these jobs, and replays each event only
	// for the handlers of its listed jobs (how dead letters are retried).
	Jobs []int64 `json:"jobs,omitempty"`
}

func (s ReplaySelector) empty() bool {
	return len(s.IDs) == 0 && s.FromID == "" && s.ToID == "" && len(s.Names) == 0 && s.Since.IsZero() &&
		s.Until.IsZero() && len(s.Outcomes) == 0 && len(s.JobStates) == 0 && len(s.Jobs) == 0
}

// ReplayOptions say how to replay.
type ReplayOptions struct {
	// Handlers, when not empty, limits the new jobs to these handler kinds.
	Handlers []string
	// DryRun computes what would be enqueued and changes nothing.
	DryRun bool
	// Reason says why, for the record. Required unless DryRun.
	Reason string
	// RequestedBy says who, for the record (e.g. user@host).
	RequestedBy string
	// BatchSize is how many events one transaction replays; 0 means
	// Config.BatchSize.
	BatchSize int
	// Progress, when set, is called after each batch.
	Progress func(ReplayProgress)
	// PlanLimit caps ReplayResult.Planned; 0 means no cap.
	PlanLimit int
}

// ReplayProgress is how far a replay has got.
type ReplayProgress struct {
	Selected int // events selected in all
	Done     int // events handled so far
	Jobs     int // jobs enqueued (or, in a dry run, planned) so far
	Skipped  int // events skipped so far
}

// PlannedEvent is one event a replay enqueues jobs for.
type PlannedEvent struct {
	EventID   string   `json:"event_id"`
	EventName string   `json:"event_name"`
	Handlers  []string `json:"handlers"`
}

// SkippedEvent is one selected event a replay could not enqueue jobs for.
type SkippedEvent struct {
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
}

// ReplayResult says what a replay did, or in a dry run would do.
type ReplayResult struct {
	// ReplayID is the replay's row in notified_replay (0 in a dry run).
	ReplayID int64 `json:"replay_id"`
	DryRun   bool  `json:"dry_run"`
	// Selected is how many events the selector matched.
	Selected int `json:"selected"`
	// Events is how many of them got jobs, and Jobs how many jobs.
	Events int `json:"events"`
	Jobs   int `json:"jobs"`
	// Planned lists the events that got jobs and their handlers (up to
	// ReplayOptions.PlanLimit).
	Planned []PlannedEvent `json:"planned"`
	// Skipped lists the events that got none, with why (up to PlanLimit).
	Skipped      []SkippedEvent `json:"skipped"`
	SkippedCount int            `json:"skipped_count"`
	Took         float64        `json:"took_seconds"`
}

// ErrNothingSelected is returned by Replay for a selector with no field set.
var ErrNothingSelected = errors.New("no events selected")

// Replay dispatches the selected events again as new jobs, one per route the
// event's name has today (limited to opts.Handlers), whatever their outcome
// when they arrived: an event that was unrouted gets the routes added since.
// The event's row is read again from the events table. The replay is
// recorded in notified_replay, and its jobs carry its id in their metadata,
// so the history shows who replayed what, when and why. Each batch of events
// is one transaction: an interrupted replay keeps the batches it committed,
// and its record shows how far it got (finished_at stays NULL).
func Replay(ctx context.Context, pool *pgxpool.Pool, cfg Config, sel ReplaySelector, opts ReplayOptions) (*ReplayResult, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if sel.empty() {
		return nil, fmt.Errorf("%w: choose events by id, id range, name, time, outcome, job state or job", ErrNothingSelected)
	}
	if !opts.DryRun && strings.TrimSpace(opts.Reason) == "" {
		return nil, errors.New("a replay needs a reason, for the record: say why with --reason")
	}
	for _, o := range sel.Outcomes {
		switch Outcome(o) {
		case OutcomeDispatched, OutcomeUnrouted, OutcomeMissing, OutcomeRejected:
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
	table, err := inspectTable(ctx, pool, cfg.Table, cfg.IDColumn, cfg.NameColumn)
	if err != nil {
		return nil, err
	}
	r := &replayer{cfg: cfg, pool: pool, table: table, sel: sel, opts: opts}
	if r.opts.BatchSize <= 0 {
		r.opts.BatchSize = cfg.BatchSize
	}
	if err := r.prepare(ctx); err != nil {
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
	cfg   Config
	pool  *pgxpool.Pool
	table *eventTable
	sel   ReplaySelector
	opts  ReplayOptions
	river *river.Client[pgx.Tx]

	ids       []string            // canonical sel.IDs
	jobKinds  map[string][]string // event id -> handlers, from sel.Jobs
	where     string
	args      []any
	replayID  int64
	selectSQL string
}

// prepare validates and canonicalizes the selector and builds its query.
func (r *replayer) prepare(ctx context.Context) error {
	for _, id := range r.sel.IDs {
		key, err := r.table.parseID(id)
		if err != nil {
			return fmt.Errorf("replay event %s: %w", quoteShort(id), err)
		}
		r.ids = append(r.ids, key)
	}
	bound := func(s, what string) (*string, error) {
		if s == "" {
			return nil, nil
		}
		key, err := r.table.parseID(s)
		if err != nil {
			return nil, fmt.Errorf("replay %s: %w", what, err)
		}
		return &key, nil
	}
	from, err := bound(r.sel.FromID, "--from-id")
	if err != nil {
		return err
	}
	to, err := bound(r.sel.ToID, "--to-id")
	if err != nil {
		return err
	}
	dispatch := migrations.Qualify(r.cfg.Schema, "notified_dispatch")
	jobsView := migrations.Qualify(r.cfg.Schema, "notified_jobs")
	riverJob := migrations.Qualify(r.cfg.Schema, "river_job")
	notifiedJob := migrations.Qualify(r.cfg.Schema, "notified_job")
	conds := []string{"d.channel = $1"}
	r.args = []any{r.cfg.Channel}
	arg := func(v any) string {
		r.args = append(r.args, v)
		return fmt.Sprintf("$%d", len(r.args))
	}
	if len(r.ids) > 0 {
		conds = append(conds, "d.event_id = ANY("+arg(r.ids)+"::text[])")
	}
	if from != nil || to != nil {
		var rc []string
		if from != nil {
			rc = append(rc, "e."+r.table.idCol+" >= "+arg(*from))
		}
		if to != nil {
			rc = append(rc, "e."+r.table.idCol+" <= "+arg(*to))
		}
		conds = append(conds, "d.event_id IN (SELECT e."+r.table.idCol+"::text FROM "+r.table.ident+" e WHERE "+strings.Join(rc, " AND ")+")")
	}
	if len(r.sel.Names) > 0 {
		conds = append(conds, "d.event_name = ANY("+arg(r.sel.Names)+"::text[])")
	}
	if !r.sel.Since.IsZero() {
		conds = append(conds, "d.dispatched_at >= "+arg(r.sel.Since))
	}
	if !r.sel.Until.IsZero() {
		conds = append(conds, "d.dispatched_at < "+arg(r.sel.Until))
	}
	if len(r.sel.Outcomes) > 0 {
		conds = append(conds, "d.outcome = ANY("+arg(r.sel.Outcomes)+"::text[])")
	}
	if len(r.sel.JobStates) > 0 {
		kinds := "TRUE"
		if len(r.opts.Handlers) > 0 {
			kinds = "j.kind = ANY(" + arg(r.opts.Handlers) + "::text[])"
		}
		// The newest job of its handler for its event is in the state.
		conds = append(conds, `d.event_id IN (SELECT j.event_id FROM `+jobsView+` j
			WHERE j.channel = $1 AND j.state = ANY(`+arg(r.sel.JobStates)+`::text[]) AND `+kinds+`
			  AND NOT EXISTS (SELECT 1 FROM `+riverJob+` l
				WHERE l.metadata @> jsonb_build_object('notified', jsonb_build_object('channel', j.channel, 'event_id', j.event_id))
				  AND l.kind = j.kind AND l.id > j.job_id)
			  AND NOT EXISTS (SELECT 1 FROM `+notifiedJob+` l
				WHERE l.channel = j.channel AND l.event_id = j.event_id AND l.kind = j.kind AND l.job_id > j.job_id))`)
	}
	if len(r.sel.Jobs) > 0 {
		rows, err := r.pool.Query(ctx, `SELECT event_id, kind FROM `+jobsView+` WHERE channel = $1 AND job_id = ANY($2)`,
			r.cfg.Channel, r.sel.Jobs)
		if err != nil {
			return fmt.Errorf("look up jobs to replay: %w", err)
		}
		r.jobKinds = map[string][]string{}
		var id, kind string
		if _, err := pgx.ForEachRow(rows, []any{&id, &kind}, func() error {
			if !slices.Contains(r.jobKinds[id], kind) {
				r.jobKinds[id] = append(r.jobKinds[id], kind)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("look up jobs to replay: %w", err)
		}
		keys := make([]string, 0, len(r.jobKinds))
		for k := range r.jobKinds {
			keys = append(keys, k)
		}
		conds = append(conds, "d.event_id = ANY("+arg(keys)+"::text[])")
	}
	r.where = strings.Join(conds, " AND ")
	r.selectSQL = "SELECT d.event_id FROM " + dispatch + " d WHERE " + r.where +
		// Pages follow the primary key; the first page has no lower bound,
		// so that a recorded empty payload ("") is selected too.
		" AND ($" + fmt.Sprint(len(r.args)+1) + "::text IS NULL OR d.event_id > $" + fmt.Sprint(len(r.args)+1) + ")" +
		" ORDER BY d.event_id LIMIT $" + fmt.Sprint(len(r.args)+2)
	return nil
}

func (r *replayer) run(ctx context.Context) (*ReplayResult, error) {
	res := &ReplayResult{DryRun: r.opts.DryRun, Planned: []PlannedEvent{}, Skipped: []SkippedEvent{}}
	dispatch := migrations.Qualify(r.cfg.Schema, "notified_dispatch")
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM "+dispatch+" d WHERE "+r.where, r.args...).Scan(&res.Selected); err != nil {
		return nil, fmt.Errorf("count events to replay: %w", err)
	}
	if !r.opts.DryRun {
		client, err := river.NewClient(riverpgxv5.New(r.pool), &river.Config{Schema: r.cfg.Schema, Logger: r.cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("river client: %w", err)
		}
		r.river = client
		selJSON, err := json.Marshal(r.sel)
		if err != nil {
			return nil, fmt.Errorf("encode selector: %w", err)
		}
		var handlers []string
		if len(r.opts.Handlers) > 0 {
			handlers = r.opts.Handlers
		}
		if err := r.pool.QueryRow(ctx, `INSERT INTO `+migrations.Qualify(r.cfg.Schema, "notified_replay")+`
				(channel, requested_by, reason, selector, handlers) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			r.cfg.Channel, r.opts.RequestedBy, r.opts.Reason, selJSON, handlers).Scan(&r.replayID); err != nil {
			return nil, fmt.Errorf("record replay: %w", err)
		}
		res.ReplayID = r.replayID
	}
	var after *string
	done := 0
	for {
		rows, err := r.pool.Query(ctx, r.selectSQL, append(slices.Clone(r.args), after, r.opts.BatchSize)...)
		if err != nil {
			return res, fmt.Errorf("select events to replay: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, fmt.Errorf("select events to replay: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		after = &keys[len(keys)-1]
		if err := r.batch(ctx, keys, res); err != nil {
			return res, err
		}
		done += len(keys)
		if r.opts.Progress != nil {
			r.opts.Progress(ReplayProgress{Selected: res.Selected, Done: done, Jobs: res.Jobs, Skipped: res.SkippedCount})
		}
	}
	if !r.opts.DryRun {
		if _, err := r.pool.Exec(ctx, `UPDATE `+migrations.Qualify(r.cfg.Schema, "notified_replay")+
			` SET finished_at = now() WHERE id = $1`, r.replayID); err != nil {
			return res, fmt.Errorf("record end of replay %d: %w", r.replayID, err)
		}
	}
	return res, nil
}

// batch replays one batch of events in one transaction. If it fails, res is
// left as it was.
func (r *replayer) batch(ctx context.Context, keys []string, res *ReplayResult) error {
	before := *res
	before.Planned, before.Skipped = slices.Clip(res.Planned), slices.Clip(res.Skipped)
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		skip := func(id, reason string) {
			res.SkippedCount++
			if r.opts.PlanLimit <= 0 || len(res.Skipped) < r.opts.PlanLimit {
				res.Skipped = append(res.Skipped, SkippedEvent{EventID: id, Reason: reason})
			}
		}
		var ids []string
		for _, k := range keys {
			if _, err := r.table.parseID(k); err != nil {
				skip(k, "not a valid id: "+err.Error())
				continue
			}
			ids = append(ids, k)
		}
		found := map[string]eventRow{}
		if len(ids) > 0 {
			rows, err := tx.Query(ctx, r.table.fetchSQL(), ids)
			if err != nil {
				return fmt.Errorf("fetch events from %s: %w", r.table.display, err)
			}
			var id string
			var ev eventRow
			if _, err := pgx.ForEachRow(rows, []any{&id, &ev.name, &ev.data}, func() error {
				found[id] = eventRow{name: ev.name, data: slices.Clone(ev.data)}
				return nil
			}); err != nil {
				return fmt.Errorf("fetch events from %s: %w", r.table.display, err)
			}
		}
		rows, err := tx.Query(ctx, newQueries(r.cfg.Schema).routes)
		if err != nil {
			return fmt.Errorf("read routes: %w", err)
		}
		all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (routes.Route, error) {
			var rt routes.Route
			err := row.Scan(&rt.Event, &rt.Kind, &rt.Queue, &rt.Priority, &rt.MaxAttempts)
			return rt, err
		})
		if err != nil {
			return fmt.Errorf("read routes: %w", err)
		}
		byName := map[string][]routes.Route{}
		for _, rt := range all {
			byName[rt.Event] = append(byName[rt.Event], rt)
		}

		var params []river.InsertManyParams
		events := 0
		for _, id := range ids {
			ev, ok := found[id]
			if !ok {
				skip(id, fmt.Sprintf("no row in %s with %s = %s", r.table.display, r.cfg.IDColumn, id))
				continue
			}
			if ev.name == nil {
				skip(id, fmt.Sprintf("name column %s is NULL", r.cfg.NameColumn))
				continue
			}
			var chosen []routes.Route
			for _, rt := range byName[*ev.name] {
				if len(r.opts.Handlers) > 0 && !slices.Contains(r.opts.Handlers, rt.Kind) {
					continue
				}
				if r.jobKinds != nil && !slices.Contains(r.jobKinds[id], rt.Kind) {
					continue
				}
				chosen = append(chosen, rt)
			}
			if len(chosen) == 0 {
				reason := fmt.Sprintf("no route for event name %q", *ev.name)
				if len(r.opts.Handlers) > 0 || r.jobKinds != nil {
					reason = fmt.Sprintf("event name %q has no route to the chosen handlers", *ev.name)
				}
				skip(id, reason)
				continue
			}
			events++
			handlers := make([]string, len(chosen))
			for i, rt := range chosen {
				handlers[i] = rt.Kind
			}
			if r.opts.PlanLimit <= 0 || len(res.Planned) < r.opts.PlanLimit {
				res.Planned = append(res.Planned, PlannedEvent{EventID: id, EventName: *ev.name, Handlers: handlers})
			}
			if r.opts.DryRun {
				res.Jobs += len(chosen)
				continue
			}
			src := jobs.Source{EventID: id, EventName: *ev.name, Channel: r.cfg.Channel, ReplayID: r.replayID}
			var err error
			if params, err = appendJobParams(params, src, ev.data, chosen); err != nil {
				return err
			}
		}
		res.Events += events
		if r.opts.DryRun {
			return nil
		}
		if len(params) > 0 {
			n, err := r.river.InsertManyFastTx(ctx, tx, params)
			if err != nil {
				return fmt.Errorf("insert %d replayed jobs: %w", len(params), err)
			}
			res.Jobs += n
		}
		if _, err := tx.Exec(ctx, `UPDATE `+migrations.Qualify(r.cfg.Schema, "notified_replay")+`
			SET events = $2, jobs = $3, skipped = $4 WHERE id = $1`,
			r.replayID, res.Events, res.Jobs, res.SkippedCount); err != nil {
			return fmt.Errorf("record progress of replay %d: %w", r.replayID, err)
		}
		return nil
	})
	if err != nil {
		*res = before
	}
	return err
}
