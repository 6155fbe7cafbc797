package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// batchTimeout bounds how long a dispatch transaction lives (five times the
// bridge's 30 s statement timeout, plus a second of slack): a dispatch that
// read the routes after a change began less than this before it.
const batchTimeout = 151 * time.Second

// result is the verdict of a run.
type result struct {
	seed                uint64
	chaos, drain, total time.Duration
	drained             bool
	bridges             string
	workers             string
	ordered             orderedResult
	jobStates           map[string]int // jobs by River state
	registryLeft        []string       // bridges stopped by SIGTERM whose row stayed in notified_bridge

	events           int
	byName           map[string]int
	acked            int // commits that returned without error
	unknownCommitted int // rows whose commit returned an error, found in the table
	unknownAbsent    int // ids whose commit returned an error, not in the table
	rolledBackIDs    int
	rolledBackTx     int

	notifies           map[notifyKind]int
	endPhase           int
	rolledBackNotified int

	outcomes                                  map[string]int
	jobsExpected, jobsFound                   int
	lost, duplicated, unexpected              int
	dupGroups                                 int // the SQL duplicate check
	outbox                                    int
	addedBefore, addedAfter                   int
	removedBefore, removedAfter               int
	addedEarliest, removedLatest              time.Duration // how close to the change the other route set was seen
	latP50, latP99, latMax                    time.Duration
	producerFailures                          string
	singles, bulks, bulkRows, lates, canaries int
}

// problems collects failed checks, with a few examples each.
type problems struct {
	counts   map[string]int
	examples map[string][]string
	order    []string
}

func (p *problems) add(what string, format string, args ...any) {
	if p.counts == nil {
		p.counts, p.examples = map[string]int{}, map[string][]string{}
	}
	if p.counts[what] == 0 {
		p.order = append(p.order, what)
	}
	p.counts[what]++
	if len(p.examples[what]) < 5 {
		p.examples[what] = append(p.examples[what], fmt.Sprintf(format, args...))
	}
}

type dispRec struct {
	name         *string
	outcome      string
	jobs         []route
	dispatchedAt time.Time
	notifiedAt   time.Time
}

type jobKey struct {
	eventID string
	kind    string
}

type jobAgg struct {
	count   int
	matched bool
	queue   string
	prio    int
	maxAtt  int
	name    string
	channel string
	state   string
}

// check reads the database and compares it with the ledger.
func (h *harness) check(ctx context.Context) *result {
	res := &result{byName: map[string]int{}, outcomes: map[string]int{}, notifies: map[notifyKind]int{}, jobStates: map[string]int{}}
	var probs problems
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	db := h.ctl

	// The events table is the truth about what committed.
	events := map[int64]string{}
	if err := collect(ctx, db, "SELECT id, name FROM app.events", func(rows pgx.Rows) error {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		events[id] = name
		return nil
	}); err != nil {
		h.errs.add("read the events table: %v", err)
		return res
	}
	res.events = len(events)
	for _, n := range events {
		res.byName[n]++
	}

	disp := map[string]*dispRec{}
	if err := collect(ctx, db, `SELECT event_id, event_name, outcome, jobs::text, dispatched_at, notified_at
		FROM notified.notified_dispatch WHERE channel = $1`, func(rows pgx.Rows) error {
		var id, jobsText string
		d := &dispRec{}
		if err := rows.Scan(&id, &d.name, &d.outcome, &jobsText, &d.dispatchedAt, &d.notifiedAt); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(jobsText), &d.jobs); err != nil {
			return fmt.Errorf("jobs of event %s: %w", id, err)
		}
		disp[id] = d
		res.outcomes[d.outcome]++
		return nil
	}, channel); err != nil {
		h.errs.add("read notified_dispatch: %v", err)
		return res
	}
	var otherChannels int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM notified.notified_dispatch WHERE channel <> $1", channel).Scan(&otherChannels); err != nil {
		h.errs.add("count records of other channels: %v", err)
	} else if otherChannels > 0 {
		probs.add("records on another channel", "%d dispatch records on channels other than %q", otherChannels, channel)
	}

	jobs := map[jobKey]*jobAgg{}
	if err := collect(ctx, db, `SELECT coalesce(args->>'event_id', ''), kind, queue, priority, max_attempts,
			coalesce(args->>'event_name', ''), coalesce(args->>'channel', ''), state::text
		FROM notified.river_job`, func(rows pgx.Rows) error {
		var k jobKey
		j := &jobAgg{}
		if err := rows.Scan(&k.eventID, &k.kind, &j.queue, &j.prio, &j.maxAtt, &j.name, &j.channel, &j.state); err != nil {
			return err
		}
		res.jobsFound++
		res.jobStates[j.state]++
		if prev := jobs[k]; prev != nil {
			prev.count++
			return nil
		}
		j.count = 1
		jobs[k] = j
		return nil
	}); err != nil {
		h.errs.add("read river_job: %v", err)
		return res
	}

	// The check the brief of this suite spells out, in SQL.
	if err := db.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM notified.river_job
		GROUP BY args->>'event_id', kind HAVING count(*) > 1) AS d`).Scan(&res.dupGroups); err != nil {
		h.errs.add("duplicate check: %v", err)
	} else if res.dupGroups > 0 {
		probs.add("duplicate (event_id, kind) groups in river_job", "%d groups with more than one job", res.dupGroups)
	}
	if err := db.QueryRow(ctx, "SELECT count(*) FROM notified.notified_outbox").Scan(&res.outbox); err != nil {
		h.errs.add("count the outbox: %v", err)
	} else if res.outbox > 0 {
		probs.add("outbox not empty", "%d rows left in notified_outbox", res.outbox)
	}

	// The ordered route's jobs: one at a time per key, in order.
	res.ordered = h.checkOrdered(ctx, &probs)

	led := h.led
	led.mu.Lock()
	defer led.mu.Unlock()
	fs := h.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()

	// What producers saw against what the table holds.
	res.acked = len(led.committed)
	for id, ev := range led.committed {
		name, ok := events[id]
		switch {
		case !ok:
			probs.add("acknowledged commit not in the events table", "id %d (%s): its commit returned without error", id, allNames[ev.name])
		case name != allNames[ev.name]:
			probs.add("row differs from what was committed", "id %d is %q, committed as %q", id, name, allNames[ev.name])
		}
	}
	for id := range led.uncertain {
		if _, ok := events[id]; ok {
			res.unknownCommitted++
		} else {
			res.unknownAbsent++
		}
	}
	for id := range events {
		if _, ok := led.committed[id]; ok {
			continue
		}
		if _, ok := led.uncertain[id]; ok {
			continue
		}
		if hasKey(led.rolledBack, id) {
			continue // reported below
		}
		res.unknownCommitted++ // a single-row insert whose commit returned an error
	}
	res.rolledBackIDs = len(led.rolledBack)
	res.rolledBackTx = led.rollbacks
	for id, notified := range led.rolledBack {
		if _, ok := events[id]; ok {
			probs.add("rolled-back id in the events table", "id %d", id)
		}
		if notified {
			res.rolledBackNotified++
		}
	}

	// Every event: one record, the right outcome and route set, one job
	// per recorded route.
	add, rem := fs.routeAdd, fs.routeRemove
	var latencies []time.Duration
	for id, name := range events {
		key := strconv.FormatInt(id, 10)
		allowed := allowedSets(name, add.done, rem.done)
		d := disp[key]
		if d == nil {
			probs.add("event not recorded in notified_dispatch", "id %d (%s)", id, name)
			res.lost += len(allowed[len(allowed)-1])
			continue
		}
		ev, acked := led.committed[id]
		if !acked {
			ev = led.uncertain[id]
		}
		if ev.start != 0 && d.outcome != "missing" {
			latencies = append(latencies, max(d.dispatchedAt.Sub(time.Unix(0, ev.start)), 0))
		}
		which := slices.IndexFunc(allowed, func(s []route) bool { return sameRoutes(s, d.jobs) })
		expected := d.jobs
		if which < 0 {
			probs.add("route set recorded is not one the name ever had", "id %d (%s) recorded %s with %s; allowed %s",
				id, name, d.outcome, kindsOf(d.jobs), setsText(allowed))
			expected = allowed[len(allowed)-1]
		}
		wantOutcome := "unrouted"
		if len(d.jobs) > 0 {
			wantOutcome = "dispatched"
		}
		if d.outcome != wantOutcome || d.name == nil || *d.name != name {
			probs.add("wrong outcome or name recorded", "id %d (%s): recorded %s, name %v, routes %s", id, name, d.outcome, deref(d.name), kindsOf(d.jobs))
		}

		// The routes recorded must fit the time of the change.
		var rc routeChange
		switch name {
		case nameAdded:
			rc = add
		case nameRemoved:
			rc = rem
		}
		if rc.done && which >= 0 {
			before := which == 0
			sentAfter := ev.start != 0 && !ev.notifiedLate && time.Unix(0, ev.start).After(rc.after)
			switch {
			case before && !d.dispatchedAt.Before(rc.after):
				probs.add("old route set used after the route change", "id %d (%s): dispatch began %s, change committed by %s",
					id, name, d.dispatchedAt.Format("15:04:05.000000"), rc.after.Format("15:04:05.000000"))
			case before && sentAfter:
				probs.add("old route set used for an event committed after the route change", "id %d (%s): commit sent %s, change committed by %s",
					id, name, time.Unix(0, ev.start).Format("15:04:05.000000"), rc.after.Format("15:04:05.000000"))
			case !before && d.dispatchedAt.Before(rc.before.Add(-batchTimeout)):
				probs.add("new route set used long before the route change", "id %d (%s): dispatch began %s, change sent %s",
					id, name, d.dispatchedAt.Format("15:04:05.000000"), rc.before.Format("15:04:05.000000"))
			}
			if name == nameAdded {
				if before {
					res.addedBefore++
				} else {
					res.addedAfter++
					res.addedEarliest = max(res.addedEarliest, rc.before.Sub(d.dispatchedAt))
				}
			} else {
				if before {
					res.removedBefore++
					res.removedLatest = max(res.removedLatest, d.dispatchedAt.Sub(rc.before))
				} else {
					res.removedAfter++
				}
			}
		}

		for _, r := range expected {
			// A route's filter is evaluated once, at dispatch: the
			// record says whether it skipped the event, and then no
			// job may exist.
			if r.Skipped != "" || !filterMatches(r, id) {
				if r.Skipped == "" || filterMatches(r, id) {
					probs.add("filter result recorded wrong", "event %d (%s) %s: recorded skipped %q, filter %q", id, name, r.Kind, r.Skipped, r.Where)
				}
				continue
			}
			res.jobsExpected++
			j := jobs[jobKey{key, r.Kind}]
			if j == nil {
				res.lost++
				probs.add("job lost", "event %d (%s): no %s job", id, name, r.Kind)
				continue
			}
			j.matched = true
			if j.count > 1 {
				res.duplicated += j.count - 1
				probs.add("job duplicated", "event %d (%s): %d %s jobs", id, name, j.count, r.Kind)
			}
			switch {
			case j.queue != r.Queue || j.prio != r.Priority || j.maxAtt != r.MaxAttempts:
				probs.add("job options differ from its route", "event %d %s: queue %s priority %d max attempts %d, route says %s/%d/%d",
					id, r.Kind, j.queue, j.prio, j.maxAtt, r.Queue, r.Priority, r.MaxAttempts)
			case j.name != name || j.channel != channel:
				probs.add("job args differ from the event", "event %d %s: event_name %q channel %q", id, r.Kind, j.name, j.channel)
			case r.Kind != orderedRoute.Kind && !slices.Contains(workedStates, j.state):
				// The ordered route's states are checked in checkOrdered.
				probs.add("job in a state no-op handlers cannot leave it in", "event %d %s: state %s", id, r.Kind, j.state)
			}
		}
	}
	for k, j := range jobs {
		if j.matched {
			continue
		}
		res.unexpected += j.count
		id, err := strconv.ParseInt(k.eventID, 10, 64)
		switch {
		case err == nil && hasKey(led.rolledBack, id):
			probs.add("job for a rolled-back id", "id %d kind %s (%d jobs)", id, k.kind, j.count)
		case err == nil && !hasKey(events, id):
			probs.add("job for an id with no row", "id %d kind %s (%d jobs)", id, k.kind, j.count)
		default:
			probs.add("job without a recorded route", "event %q kind %s (%d jobs)", k.eventID, k.kind, j.count)
		}
	}

	// No record for an id with no row: the trigger announces only rows
	// that exist, and a NOTIFY (which any role can send) is recorded only
	// when it names a row.
	for key, d := range disp {
		id, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			probs.add("record with a key that is not an id", "key %q: %s", key, d.outcome)
			continue
		}
		if _, ok := events[id]; ok {
			continue
		}
		probs.add("record for an id with no row", "id %s: %s with %s", key, d.outcome, kindsOf(d.jobs))
	}

	// Hand-sent NOTIFYs of ids with no row were checked above: none is
	// recorded.
	for _, n := range led.notifies {
		res.notifies[n.kind]++
		if n.kind == notifyEndPhase {
			res.endPhase++
		}
	}

	if add.done && (res.addedBefore == 0 || res.addedAfter == 0) || rem.done && (res.removedBefore == 0 || res.removedAfter == 0) {
		h.logf("note: a route change has no events on one side (added %d/%d, removed %d/%d): run longer for that check to bite",
			res.addedBefore, res.addedAfter, res.removedBefore, res.removedAfter)
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.latP50 = latencies[len(latencies)/2]
		res.latP99 = latencies[len(latencies)*99/100]
		res.latMax = latencies[len(latencies)-1]
	}
	var failed []string
	for _, op := range []string{"single-1", "single-2", "bulk", "rollback", "notify", "late-commit"} {
		if n := led.failedOps[op]; n > 0 {
			failed = append(failed, fmt.Sprintf("%s %d", op, n))
		}
	}
	res.producerFailures = strings.Join(failed, ", ")
	if res.producerFailures == "" {
		res.producerFailures = "none"
	}
	res.singles, res.bulks, res.bulkRows, res.lates, res.canaries = led.singles, led.bulks, led.bulkRows, led.lates, led.canaries

	for _, what := range probs.order {
		h.errs.add("%s: %d time(s), e.g.\n    %s", what, probs.counts[what], strings.Join(probs.examples[what], "\n    "))
	}
	return res
}

// workedStates are the states a job of a route that is not ordered may be
// in at the end: workers run its no-op handler (never failing) or have not
// got to it, or a killed worker left it running or retryable. Queue bulk
// has no worker: its jobs stay available. Never pending (only ordered jobs
// wait in lanes), discarded or cancelled.
var workedStates = []string{"available", "running", "retryable", "completed"}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

// allowedSets returns the route sets an event of this name may have been
// dispatched with, in the order they existed.
func allowedSets(name string, added, removed bool) [][]route {
	var static []route
	for _, r := range initialRoutes {
		if r.Event == name {
			static = append(static, r)
		}
	}
	switch {
	case name == nameAdded && added:
		return [][]route{nil, {addedRoute}}
	case name == nameRemoved && removed:
		return [][]route{{removedRoute}, nil}
	default:
		return [][]route{static}
	}
}

func sameRoutes(a, b []route) bool {
	if len(a) != len(b) {
		return false
	}
	// The record does not say whether a route was ordered: the lanes
	// are checked against the jobs' metadata (checkOrdered).
	key := func(r route) string { return fmt.Sprintf("%s/%s/%d/%d", r.Kind, r.Queue, r.Priority, r.MaxAttempts) }
	ka := make([]string, len(a))
	kb := make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func kindsOf(rs []route) string {
	if len(rs) == 0 {
		return "[]"
	}
	var ks []string
	for _, r := range rs {
		ks = append(ks, r.Kind)
	}
	return "[" + strings.Join(ks, " ") + "]"
}

func setsText(sets [][]route) string {
	var parts []string
	for _, s := range sets {
		parts = append(parts, kindsOf(s))
	}
	return strings.Join(parts, " or ")
}

// collect runs a query and calls scan for each row.
func collect(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, scan func(pgx.Rows) error, args ...any) error {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// summary is the run's report, as printed.
func (r *result) summary(h *harness) string {
	fs := h.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-22s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "chaos summary (seed %d)\n", r.seed)
	var names []string
	for _, n := range allNames {
		names = append(names, fmt.Sprintf("%s %d", n, r.byName[n]))
	}
	line("events committed", "%d (%s)", r.events, strings.Join(names, ", "))
	line("", "%d single-row commits, %d bulk transactions (%d rows), %d late commits, %d canaries",
		r.singles, r.bulks, r.bulkRows, r.lates, r.canaries)
	line("", "%d acknowledged; commit returned an error: %d rows committed anyway, %d not", r.acked, r.unknownCommitted, r.unknownAbsent)
	line("rolled back", "%d ids in %d transactions (%d hand-notified first)",
		r.rolledBackIDs, r.rolledBackTx, r.rolledBackNotified)
	totalNotifies := 0
	for _, n := range r.notifies {
		totalNotifies += n
	}
	line("hand-sent notifies", "%d: %d existing ids, %d just-committed ids, %d before their commit, %d rolled-back ids, %d ids with no row, %d at the end",
		totalNotifies, r.notifies[notifyExisting], r.notifies[notifyFresh], r.notifies[notifyBeforeCommit],
		r.notifies[notifyRolledBack], r.notifies[notifyNonexistent], r.notifies[notifyEndPhase])
	line("", "ids with no row, none recorded: %d during the run, %d at the end", r.notifies[notifyNonexistent]+r.notifies[notifyRolledBack], r.endPhase)
	var outcomes []string
	for _, o := range []string{"dispatched", "unrouted", "missing", "rejected"} {
		outcomes = append(outcomes, fmt.Sprintf("%s %d", o, r.outcomes[o]))
	}
	line("outcomes recorded", "%s", strings.Join(outcomes, ", "))
	line("route changes", "added: %d events dispatched before, %d after; removed: %d before, %d after",
		r.addedBefore, r.addedAfter, r.removedBefore, r.removedAfter)
	line("", "new route set seen by a dispatch that began up to %s before the add was sent; old set by one that began up to %s after the remove was sent",
		r.addedEarliest.Round(time.Millisecond), r.removedLatest.Round(time.Millisecond))
	line("jobs expected", "%d", r.jobsExpected)
	line("jobs found", "%d", r.jobsFound)
	line("lost", "%d", r.lost)
	line("duplicated", "%d (SQL duplicate groups: %d)", r.duplicated, r.dupGroups)
	line("unexpected", "%d (jobs without a recorded route)", r.unexpected)
	line("outbox left", "%d", r.outbox)
	var states []string
	for _, st := range []string{"available", "pending", "running", "retryable", "scheduled", "completed", "cancelled", "discarded"} {
		if n := r.jobStates[st]; n > 0 {
			states = append(states, fmt.Sprintf("%s %d", st, n))
		}
	}
	line("job states", "%s", strings.Join(states, ", "))
	r.ordered.summaryLines(line)
	var counts []string
	total := 0
	for _, k := range faultKinds {
		counts = append(counts, fmt.Sprintf("%s=%d", k, fs.counts[k]))
		total += fs.counts[k]
	}
	line("faults injected", "%d: %s", total, strings.Join(counts, " "))
	line("", "%d bridge backends terminated in all", fs.terminated)
	var longest recovery
	byKind := map[string]time.Duration{}
	for _, rc := range fs.recoveries {
		if rc.d > longest.d {
			longest = rc
		}
		byKind[rc.kind] = max(byKind[rc.kind], rc.d)
	}
	var rec []string
	for _, k := range faultKinds {
		if d, ok := byKind[k]; ok {
			rec = append(rec, fmt.Sprintf("%s %s", k, d.Round(time.Millisecond)))
		}
	}
	line("longest recovery", "%s (%s at %s); worst by kind: %s", longest.d.Round(time.Millisecond), longest.kind,
		longest.at.Format("15:04:05"), strings.Join(rec, ", "))
	line("dispatch latency", "p50 %s, p99 %s, max %s (commit sent to dispatch)", r.latP50.Round(time.Millisecond),
		r.latP99.Round(time.Millisecond), r.latMax.Round(time.Millisecond))
	line("bridges", "%s", r.bridges)
	line("workers", "%s", r.workers)
	if len(r.registryLeft) > 0 {
		line("", "%d stopped by SIGTERM left their row in notified_bridge (not a delivery failure; fatal unless -chaos.strict-registry=false)",
			len(r.registryLeft))
	}
	line("producer failures", "%s (retried)", r.producerFailures)
	drained := "drained"
	if !r.drained {
		drained = "NOT drained"
	}
	line("duration", "chaos %s, final drain %s (%s), total %s", r.chaos.Round(time.Second), r.drain.Round(100*time.Millisecond),
		drained, r.total.Round(time.Second))
	return b.String()
}
