// Package jobparams builds the River jobs of an event, one per route, in the
// one way the bridge's dispatch and a replay both insert them: args are the
// event's jobs.Payload, metadata names the event (and replay) it came from.
// For a row too large to leave the server, the same job is built by a
// statement in the server instead.
package jobparams

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/riverqueue/river"

	"github.com/notified/notified/history"
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
// whose row is data, so River UI shows where each job came from.
func Append(params []river.InsertManyParams, src jobs.Source, data []byte, rs []routes.Route) ([]river.InsertManyParams, error) {
	payload := jobs.Payload{EventID: src.EventID, EventName: src.EventName, Channel: src.Channel, Data: data}
	meta, err := Metadata(src)
	if err != nil {
		return params, err
	}
	opts := make([]river.InsertOpts, len(rs))
	for i, route := range rs {
		opts[i] = river.InsertOpts{Queue: route.Queue, Priority: route.Priority, MaxAttempts: route.MaxAttempts, Metadata: meta}
		params = append(params, river.InsertManyParams{Args: args{kind: route.Kind, Payload: payload}, InsertOpts: &opts[i]})
	}
	return params, nil
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

// LargeRowSQL inserts into riverJob the jobs of one row of t without the
// row leaving the server: one job per route, whose args are the Payload
// Append would build with the row as data. LargeRowArgs gives its
// arguments. River's own clients for other languages insert jobs with SQL
// in the same way.
func LargeRowSQL(riverJob string, t *eventstable.Table) string {
	return `INSERT INTO ` + riverJob + ` (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
		SELECT jsonb_build_object('event_id', $2::text, 'event_name', $3::text, 'channel', $4::text, 'data', row_to_json(e)::jsonb),
			r.kind, r.max_attempts, $5::jsonb, r.priority, r.queue, now(), 'available', '{}'
		FROM ` + t.Ident + ` AS e,
			unnest($6::text[], $7::text[], $8::smallint[], $9::smallint[]) AS r(kind, queue, priority, max_attempts)
		WHERE e.` + t.IDCol + ` = $1::` + t.BoundType()
}

// LargeRowArgs are LargeRowSQL's arguments for the event src, whose row
// has the id src.EventID, and its routes.
func LargeRowArgs(src jobs.Source, rs []routes.Route) ([]any, error) {
	meta, err := Metadata(src)
	if err != nil {
		return nil, err
	}
	kinds := make([]string, len(rs))
	queues := make([]string, len(rs))
	priorities := make([]int16, len(rs))
	attempts := make([]int16, len(rs))
	for i, route := range rs {
		kinds[i], queues[i] = route.Kind, route.Queue
		priorities[i], attempts[i] = int16(route.Priority), int16(min(route.MaxAttempts, 1<<15-1))
	}
	return []any{src.EventID, src.EventID, src.EventName, src.Channel, meta, kinds, queues, priorities, attempts}, nil
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
