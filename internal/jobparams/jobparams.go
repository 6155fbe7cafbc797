// Package jobparams builds the River jobs of an event, one per route, in the
// one way the bridge's dispatch and a replay both insert them: args are the
// event's jobs.Payload, metadata names the event (and replay) it came from.
// For a row too large to leave the server, the same job is built by a
// statement in the server instead.
package jobparams

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/riverqueue/river"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// args is the args of a job: a jobs.Payload whose kind comes from the route.
type args struct {
	kind string
	jobs.Payload
}

func (a args) Kind() string { return a.kind }

// Append appends the insert parameters of one job per route for an event
// whose row is data, so River UI shows where each job came from. lanes,
// when not nil, is the lane key of each route's job (see Lanes): a job
// with one has its lane in its metadata, for AppendLanesSQL to put in its
// lane, and is inserted pending unless heads says it is its lane's head.
func Append(params []river.InsertManyParams, src jobs.Source, data []byte, rs []routes.Route, lanes []string, heads []bool) ([]river.InsertManyParams, error) {
	payload := jobs.Payload{EventID: src.EventID, EventName: src.EventName, Channel: src.Channel, Data: data}
	meta, err := Metadata(src)
	if err != nil {
		return params, err
	}
	opts := make([]river.InsertOpts, len(rs))
	for i, route := range rs {
		opts[i] = river.InsertOpts{Queue: route.Queue, Priority: route.Priority, MaxAttempts: route.MaxAttempts, Metadata: meta}
		own := src
		if lanes != nil && lanes[i] != "" {
			own.Lane = lanes[i]
			opts[i].Pending = heads == nil || !heads[i]
		}
		if route.Webhook != "" {
			own.Webhook = &jobs.WebhookTarget{URL: route.Webhook, SecretEnv: route.SecretEnv}
		}
		if own.Lane != "" || own.Webhook != nil {
			if opts[i].Metadata, err = Metadata(own); err != nil {
				return params, err
			}
		}
		params = append(params, river.InsertManyParams{Args: args{kind: route.Kind, Payload: payload}, InsertOpts: &opts[i]})
	}
	return params, nil
}

// KeyArgs pairs the event names of ordered routes with their key paths, as
// the parameters of eventstable.LaneKeysSQL, as FilterArgs does filters.
func KeyArgs(byName map[string][]routes.Route) (names, paths []string) {
	names, paths = []string{}, []string{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		for _, r := range byName[name] {
			if r.OrderedBy != "" {
				names, paths = append(names, name), append(paths, r.OrderedBy)
			}
		}
	}
	return names, paths
}

// Lanes gives the lane key of the job of each route of chosen, a subset of
// rs (the routes of an event's name, in order) : "" for a route that is
// not ordered or whose key the event's row does not have. keys are
// eventstable.LaneKeysSQL's results on the row, one per ordered route of
// rs in order. It returns nil when no job has a lane.
func Lanes(rs, chosen []routes.Route, keys []*string) []string {
	type route struct{ kind, webhook string }
	byRoute := map[route]string{}
	i := 0
	for _, r := range rs {
		if r.OrderedBy == "" {
			continue
		}
		if i < len(keys) && keys[i] != nil {
			byRoute[route{r.Kind, r.Webhook}] = *keys[i]
		}
		i++
	}
	if len(byRoute) == 0 {
		return nil
	}
	lanes := make([]string, len(chosen))
	for j, r := range chosen {
		lanes[j] = byRoute[route{r.Kind, r.Webhook}]
	}
	return lanes
}

// SplitOrdered splits the routes rs of an event's jobs by their lanes
// (see Lanes): the routes whose jobs are not ordered, and those that are,
// with their lane keys.
func SplitOrdered(rs []routes.Route, lanes []string) (unordered, ordered []routes.Route, keys []string) {
	if lanes == nil {
		return rs, nil, nil
	}
	for i, r := range rs {
		if lanes[i] == "" {
			unordered = append(unordered, r)
		} else {
			ordered, keys = append(ordered, r), append(keys, lanes[i])
		}
	}
	return unordered, ordered, keys
}

// LaneEntry is one ordered job to append to its lane.
type LaneEntry struct {
	JobID int64
	Kind  string
	Key   string
	Stop  bool // its route's OnFailure is stop
	Head  bool // it is its lane's head: inserted available, not pending (see OpenLanesSQL)
}

// OpenLanesSQL creates or locks the lanes of ordered jobs about to be
// inserted in schema and says which are their lanes' heads (see
// notified_lane_open in migrations); OpenArgs gives its arguments. A head
// is inserted available, the others pending. The lanes stay locked to the
// transaction's end, for AppendLanesSQL.
func OpenLanesSQL(schema string) string {
	return "SELECT " + dbtx.InSchema(schema, "{schema}.notified_lane_open($1, $2, $3)")
}

// OpenArgs are OpenLanesSQL's arguments for entries of channel, in their
// order.
func OpenArgs(channel string, entries []LaneEntry) []any {
	kinds := make([]string, len(entries))
	keys := make([]string, len(entries))
	for i, e := range entries {
		kinds[i], keys[i] = e.Kind, e.Key
	}
	return []any{channel, kinds, keys}
}

// OpenLanes runs sql (OpenLanesSQL) for the ordered jobs entries of
// channel, in their order, and marks which are their lanes' heads.
func OpenLanes(ctx context.Context, db dbtx.DBTX, sql, channel string, entries []LaneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var heads []bool
	if err := db.QueryRow(ctx, sql, OpenArgs(channel, entries)...).Scan(&heads); err != nil {
		return fmt.Errorf("open the lanes of %d ordered jobs: %w", len(entries), err)
	}
	if len(heads) != len(entries) {
		return fmt.Errorf("open the lanes of %d ordered jobs: %d answers", len(entries), len(heads))
	}
	for k := range entries {
		entries[k].Head = heads[k]
	}
	return nil
}

// AppendLanes runs sql (AppendLanesSQL) for the ordered jobs entries of
// channel, whose job ids are filled in, in the transaction that opened
// their lanes.
func AppendLanes(ctx context.Context, db dbtx.DBTX, sql, channel string, entries []LaneEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, sql, LaneArgs(channel, entries)...); err != nil {
		return fmt.Errorf("append %d ordered jobs to their lanes: %w", len(entries), err)
	}
	return nil
}

// AppendLanesSQL appends jobs to their lanes in schema (see
// notified_lane_append in migrations); LaneArgs gives its arguments. It
// returns how many jobs it appended.
func AppendLanesSQL(schema string) string {
	return "SELECT " + dbtx.InSchema(schema, "{schema}.notified_lane_append($1, $2, $3, $4, $5, $6)")
}

// LaneArgs are AppendLanesSQL's arguments for entries of channel, in
// their order.
func LaneArgs(channel string, entries []LaneEntry) []any {
	kinds := make([]string, len(entries))
	keys := make([]string, len(entries))
	stops := make([]bool, len(entries))
	ids := make([]int64, len(entries))
	heads := make([]bool, len(entries))
	for i, e := range entries {
		kinds[i], keys[i], stops[i], ids[i], heads[i] = e.Kind, e.Key, e.Stop, e.JobID, e.Head
	}
	return []any{channel, kinds, keys, stops, ids, heads}
}

// Metadata is the River metadata of an event's job: its source event (and
// replay, if any) under jobs.MetadataKey.
func Metadata(src jobs.Source) ([]byte, error) {
	meta, err := json.Marshal(struct {
		Source jobs.Source `json:"notified"`
	}{src})
	if err != nil {
		return nil, fmt.Errorf("encode metadata of event %s: %w", src.EventID, err)
	}
	return meta, nil
}

// LargeRowSQL inserts into riverJob (whose state has type riverJobState) the jobs of one row of t without the
// row leaving the server: one job per route, whose args are the Payload
// Append would build with the row as data, pending with its lane in its
// metadata when it has one, with its webhook target for a webhook route.
// It returns the id, kind and webhook URL (empty for none) of each job it
// inserted. LargeRowArgs gives its arguments. River's own clients for other
// languages insert jobs with SQL in the same way.
func LargeRowSQL(riverJob, riverJobState string, t *eventstable.Table) string {
	return `INSERT INTO ` + riverJob + ` (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
		SELECT jsonb_build_object('event_id', $2::text, 'event_name', $3::text, 'channel', $4::text, 'data', row_to_json(e)::jsonb),
			r.kind, r.max_attempts,
			CASE WHEN r.webhook = '' THEN m.meta
				ELSE jsonb_set(m.meta, '{notified,webhook}', jsonb_strip_nulls(jsonb_build_object('url', r.webhook, 'secret_env', nullif(r.secret_env, ''))))
				END,
			r.priority, r.queue, now(),
			CASE WHEN r.lane IS NULL OR r.head THEN 'available' ELSE 'pending' END::` + riverJobState + `, '{}'
		FROM ` + t.Ident + ` AS e,
			unnest($6::text[], $7::text[], $8::smallint[], $9::smallint[], $10::text[], $11::text[], $12::text[], $13::boolean[])
				AS r(kind, queue, priority, max_attempts, lane, webhook, secret_env, head),
			LATERAL (SELECT CASE WHEN r.lane IS NULL THEN $5::jsonb ELSE jsonb_set($5::jsonb, '{notified,lane}', to_jsonb(r.lane)) END AS meta) m
		WHERE e.` + t.IDCol + ` = $1::` + t.BoundType() + `
		RETURNING id, kind, coalesce(metadata->'notified'->'webhook'->>'url', '')`
}

// LargeRowArgs are LargeRowSQL's arguments for the event src, whose row
// has the id src.EventID, its routes, their lanes (nil: none, see Lanes)
// and which of those are their lanes' heads (see OpenLanesSQL).
func LargeRowArgs(src jobs.Source, rs []routes.Route, lanes []string, heads []bool) ([]any, error) {
	meta, err := Metadata(src)
	if err != nil {
		return nil, err
	}
	kinds := make([]string, len(rs))
	queues := make([]string, len(rs))
	priorities := make([]int16, len(rs))
	attempts := make([]int16, len(rs))
	laneKeys := make([]*string, len(rs))
	webhooks := make([]string, len(rs))
	secrets := make([]string, len(rs))
	isHead := make([]bool, len(rs))
	for i, route := range rs {
		kinds[i], queues[i], webhooks[i], secrets[i] = route.Kind, route.Queue, route.Webhook, route.SecretEnv
		priorities[i], attempts[i] = int16(route.Priority), int16(min(route.MaxAttempts, 1<<15-1))
		if lanes != nil && lanes[i] != "" {
			laneKeys[i] = &lanes[i]
			isHead[i] = heads != nil && heads[i]
		}
	}
	return []any{src.EventID, src.EventID, src.EventName, src.Channel, meta, kinds, queues, priorities, attempts, laneKeys, webhooks, secrets, isHead}, nil
}

// FilterArgs pairs the event names of routes with their filters, as the
// parameters of eventstable.FilterResultsSQL: names[i] has a route whose filter is paths[i], in the order of the
// routes of each name, the names sorted.
func FilterArgs(byName map[string][]routes.Route) (names, paths []string) {
	names, paths = []string{}, []string{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		for _, r := range byName[name] {
			if r.Where != "" {
				names, paths = append(names, name), append(paths, r.Where)
			}
		}
	}
	return names, paths
}

// ApplyFilters splits rs, the routes of an event's name, by the results of
// their filters on its row (eventstable.FilterResultsSQL's text: one
// character per route with a filter, in order): it returns the routes that
// get a job, and, if a filter skipped any, per route why ("" if it gets
// one). A route without a filter always gets one; a result that is missing
// (the server evaluated none) counts as an error.
func ApplyFilters(rs []routes.Route, results string) (jobs []routes.Route, skipped []string) {
	result := func(i int) byte {
		if i < len(results) {
			return results[i]
		}
		return eventstable.FilterError
	}
	i, all := 0, true
	for _, r := range rs {
		if r.Where != "" {
			all = all && result(i) == eventstable.FilterMatch
			i++
		}
	}
	if all {
		return rs, nil
	}
	skipped = make([]string, len(rs))
	i = 0
	for j, r := range rs {
		if r.Where == "" {
			jobs = append(jobs, r)
			continue
		}
		switch result(i) {
		case eventstable.FilterMatch:
			jobs = append(jobs, r)
		case eventstable.FilterNoMatch:
			skipped[j] = history.SkippedByFilter
		default:
			skipped[j] = history.SkippedByFilterError
		}
		i++
	}
	return jobs, skipped
}
