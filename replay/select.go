package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/jobparams"
	"github.com/notified/notified/migrations"
)

// replayQueries are a replay's statements for one schema and events table.
type replayQueries struct {
	dispatch string // quoted notified_dispatch
	jobsView string // quoted notified_jobs
	schema   string // as configured, for history's SQL

	rows     string // the rows of ids $1: id, name, the row as JSON, the results of filters $2/$3, lane keys $4/$5
	rowNames string // the same without the row (NULL), for a dry run
	names    string // the distinct names of the rows of ids $1
	jobsOf   string // the event id, kind and webhook URL of jobs @jobs of @channel
	record   string // inserts a replay's record, returns its id
	progress string // sets a replay's counts
	finish   string // sets a replay's finished_at

	openLanes   string // opens the lanes of ordered jobs
	appendLanes string // appends ordered jobs to their lanes
}

func newReplayQueries(schema string, t *eventstable.Table) replayQueries {
	replay := migrations.Qualify(schema, "notified_replay")
	jobsView := migrations.Qualify(schema, "notified_jobs")
	return replayQueries{
		dispatch: migrations.Qualify(schema, "notified_dispatch"),
		jobsView: jobsView,
		schema:   schema,

		rows:     t.FetchFilteredSQL(true),
		rowNames: t.FetchFilteredSQL(false),
		names:    t.NamesSQL(),
		jobsOf: `SELECT v.event_id, v.kind, coalesce(
				(SELECT j.metadata->'notified'->'webhook'->>'url' FROM ` + migrations.Qualify(schema, "river_job") + ` j WHERE j.id = v.job_id),
				(SELECT n.webhook_url FROM ` + migrations.Qualify(schema, "notified_job") + ` n WHERE n.job_id = v.job_id), '')
			FROM ` + jobsView + ` v WHERE v.channel = @channel AND v.job_id = ANY(@jobs)`,
		record: `INSERT INTO ` + replay + ` (channel, requested_by, reason, selector, handlers, started_at, ignore_filters)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		progress: `UPDATE ` + replay + ` SET events = $2, jobs = $3, skipped = $4 WHERE id = $1`,
		finish:   `UPDATE ` + replay + ` SET finished_at = now() WHERE id = $1`,

		openLanes:   jobparams.OpenLanesSQL(schema),
		appendLanes: jobparams.AppendLanesSQL(schema),
	}
}

// The snapshot is one statement, so it sees one state of the database: the
// ids it returns are the replay's selection, whatever is dispatched while
// the replay runs. Each selector field adds one condition on the dispatch
// record d, with named arguments.
const (
	replayByIDs      = "d.event_id = ANY(@ids::text[])"
	replayByJobs     = "d.event_id = ANY(@job_events::text[])"
	replayByNames    = "d.event_name = ANY(@names::text[])"
	replaySince      = "d.dispatched_at >= @since"
	replayUntil      = "d.dispatched_at < @until"
	replayByOutcomes = "d.outcome = ANY(@outcomes::text[])"
)

// replayByJobStates is the condition that the event's newest job of a
// handler (of @handlers, with handlers) is in one of @job_states, with the
// job found in River's table or, after River deleted it, in notified_job.
func (q replayQueries) replayByJobStates(handlers bool) string {
	kinds := ""
	if handlers {
		kinds = " AND j.kind = ANY(@handlers::text[])"
	}
	return `d.event_id IN (SELECT j.event_id FROM ` + q.jobsView + ` j
		WHERE j.channel = @channel AND j.state = ANY(@job_states::text[])` + kinds + `
		  AND ` + history.NewestJobCondition(q.schema, "j") + `)`
}

// snapshotByRecord selects from the dispatch records of the channel: the
// ids, and NULL where snapshotByRange has names.
func (q replayQueries) snapshotByRecord(conds []string) string {
	return "SELECT d.event_id, NULL::text FROM " + q.dispatch + " d WHERE " +
		strings.Join(append([]string{"d.channel = @channel"}, conds...), " AND ")
}

// snapshotByRange selects an id range. It reads the range from the events
// table, by the id column's own type and index, and looks up each id's
// dispatch record by its primary key. The records' key is text, whose order
// is not the ids' (10 sorts before 9): a range cannot be read from it. The
// LIMIT 1 (the key is unique, so it changes no result) keeps the lookup a
// per-id index probe whatever the statistics say: flattened into a plain
// join, an unanalyzed table once had the planner compare every dispatch
// record with every id of the range, for minutes. It returns the ids, and
// the names their rows have now.
func (q replayQueries) snapshotByRange(t *eventstable.Table, rangeConds, conds []string) string {
	return `SELECT d.event_id, e.` + t.NameCol + `::text FROM ` + t.Ident + ` AS e
		CROSS JOIN LATERAL (
			SELECT x.channel, x.event_id, x.event_name, x.outcome, x.dispatched_at
			FROM ` + q.dispatch + ` x
			WHERE x.channel = @channel AND x.event_id = e.` + t.IDCol + `::text
			LIMIT 1
		) d
		WHERE ` + strings.Join(append(rangeConds, conds...), " AND ")
}

// prepare canonicalizes the selector and builds the snapshot query.
func (r *replayer) prepare(ctx context.Context) error {
	r.args = pgx.NamedArgs{"channel": r.cfg.Channel}
	var conds []string
	if len(r.sel.IDs) > 0 {
		ids := make([]string, 0, len(r.sel.IDs))
		for _, id := range r.sel.IDs {
			key, err := r.table.ParseID(id)
			if err != nil {
				return &SelectorError{Field: "IDs", Err: err}
			}
			ids = append(ids, key)
		}
		conds = append(conds, replayByIDs)
		r.args["ids"] = ids
	}
	if len(r.sel.Names) > 0 {
		conds = append(conds, replayByNames)
		r.args["names"] = r.sel.Names
	}
	if !r.sel.Since.IsZero() {
		conds = append(conds, replaySince)
		r.args["since"] = r.sel.Since
	}
	if !r.sel.Until.IsZero() {
		conds = append(conds, replayUntil)
		r.args["until"] = r.sel.Until
	}
	if len(r.sel.Outcomes) > 0 {
		conds = append(conds, replayByOutcomes)
		r.args["outcomes"] = r.sel.Outcomes
	}
	if len(r.sel.JobStates) > 0 {
		conds = append(conds, r.q.replayByJobStates(len(r.opts.Handlers) > 0))
		r.args["job_states"] = r.sel.JobStates
		if len(r.opts.Handlers) > 0 {
			r.args["handlers"] = r.opts.Handlers
		}
	}
	if len(r.sel.Jobs) > 0 {
		if err := r.lookUpJobs(ctx); err != nil {
			return err
		}
		conds = append(conds, replayByJobs)
		r.args["job_events"] = slices.Sorted(func(yield func(string) bool) {
			for k := range r.jobKinds {
				if !yield(k) {
					return
				}
			}
		})
	}

	var rangeConds []string
	for _, b := range []struct {
		value, field, op, arg string
	}{{r.sel.FromID, "FromID", ">=", "from_id"}, {r.sel.ToID, "ToID", "<=", "to_id"}} {
		if b.value == "" {
			continue
		}
		v, err := r.table.RangeBound(b.value)
		if err != nil {
			return &SelectorError{Field: b.field, Err: err}
		}
		rangeConds = append(rangeConds, "e."+r.table.IDCol+" "+b.op+" @"+b.arg+"::"+r.table.BoundType())
		r.args[b.arg] = v
	}
	if len(rangeConds) > 0 {
		r.snapshot = r.q.snapshotByRange(r.table, rangeConds, conds)
		r.snapshotNames = true
	} else {
		r.snapshot = r.q.snapshotByRecord(conds)
	}
	return nil
}

// lookUpJobs finds the events and handlers of the jobs of sel.Jobs.
func (r *replayer) lookUpJobs(ctx context.Context) error {
	rows, err := r.pool.Query(ctx, r.q.jobsOf, pgx.NamedArgs{"channel": r.cfg.Channel, "jobs": r.sel.Jobs})
	if err != nil {
		return fmt.Errorf("look up jobs to replay: %w", err)
	}
	r.jobKinds = map[string][]string{}
	var id, kind, url string
	if _, err := pgx.ForEachRow(rows, []any{&id, &kind, &url}, func() error {
		if h := handlerOf(kind, url); !slices.Contains(r.jobKinds[id], h) {
			r.jobKinds[id] = append(r.jobKinds[id], h)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("look up jobs to replay: %w", err)
	}
	return nil
}

// takeSnapshot selects the ids and, with names, the distinct names their
// rows have now. It runs in a read-only transaction without JIT: compiling
// the snapshot of 100,000 ids of an analyzed table took 0.5 s, longer than
// running it.
func (r *replayer) takeSnapshot(ctx context.Context, withNames bool) (keys, names []string, err error) {
	err = pgx.BeginTxFunc(ctx, r.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('jit', 'off', true)"); err != nil {
			return fmt.Errorf("select events to replay: %w", err)
		}
		rows, err := tx.Query(ctx, r.snapshot, r.args)
		if err != nil {
			return fmt.Errorf("select events to replay: %w", err)
		}
		seen := map[string]bool{}
		var key string
		var name *string
		if _, err := pgx.ForEachRow(rows, []any{&key, &name}, func() error {
			keys = append(keys, key)
			if name != nil && !seen[*name] {
				seen[*name] = true
				names = append(names, *name)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("select events to replay: %w", err)
		}
		if !withNames || r.snapshotNames || len(keys) == 0 {
			return nil
		}
		ids := make([]string, 0, len(keys))
		for _, k := range keys {
			if _, err := r.table.ParseID(k); err == nil {
				ids = append(ids, k)
			}
		}
		if rows, err = tx.Query(ctx, r.q.names, ids); err != nil {
			return fmt.Errorf("read the names of the selected events from %s: %w", r.table.Display, err)
		}
		if names, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("read the names of the selected events from %s: %w", r.table.Display, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	r.sortIDs(keys)
	slices.Sort(names)
	return keys, names, nil
}

// sortIDs sorts ids in the id column's order (integers as numbers);
// recorded keys that are not ids of the table (rejected payloads) come
// first, in byte order.
func (r *replayer) sortIDs(keys []string) {
	if r.table.Kind != eventstable.IDInteger {
		slices.Sort(keys)
		return
	}
	type key struct {
		text  string
		n     int64
		valid bool
	}
	parsed := make([]key, len(keys))
	for i, k := range keys {
		_, err := r.table.ParseID(k)
		parsed[i] = key{text: k, valid: err == nil}
		if parsed[i].valid {
			parsed[i].n, _ = strconv.ParseInt(k, 10, 64)
		}
	}
	slices.SortFunc(parsed, func(a, b key) int {
		switch {
		case a.valid != b.valid:
			if a.valid {
				return 1
			}
			return -1
		case a.valid:
			return cmp.Compare(a.n, b.n)
		default:
			return strings.Compare(a.text, b.text)
		}
	})
	for i, k := range parsed {
		keys[i] = k.text
	}
}

// handlerOf names a route's handler among the jobs to replay: its kind and,
// for a webhook route, its URL, since webhook routes share their kind.
func handlerOf(kind, webhookURL string) string { return kind + "\x00" + webhookURL }
