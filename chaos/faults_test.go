package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/trigger"
)

// Fault kinds.
const (
	faultKill9       = "kill9"         // SIGKILL a random bridge, start another (at once or after a gap)
	faultBridges2    = "bridges_2"     // run two bridges for a while
	faultBridges3    = "bridges_3"     // run three bridges for a while
	faultScaleDown   = "scale_down"    // back to one bridge: SIGTERM the others
	faultTerminate   = "terminate"     // pg_terminate_backend of every bridge backend, listeners included
	faultRestart     = "pg_restart"    // restart Postgres (once per run)
	faultRouteAdd    = "route_add"     // add the route of "added" (once)
	faultRouteRemove = "route_remove"  // remove the route of "removed" (once)
	faultLock        = "table_lock"    // LOCK TABLE events IN ACCESS EXCLUSIVE MODE for 2-3 s
	faultRebuild     = "table_rebuild" // copy events into a new table, drop the old one, install the trigger: one transaction
	faultIDType      = "id_type"       // ALTER the id column between bigint and integer and install the trigger: one transaction
	faultWorkerKill  = "worker_kill9"  // SIGKILL a worker (half the time the leader), start another (at once or after a gap); first half of the chaos only
	faultWorkerTerm  = "worker_term"   // SIGTERM a random worker (a clean stop), start another
)

// faultKinds in the order the summary lists them.
var faultKinds = []string{faultKill9, faultBridges2, faultBridges3, faultScaleDown, faultTerminate,
	faultRestart, faultRouteAdd, faultRouteRemove, faultLock, faultRebuild, faultIDType, faultWorkerKill, faultWorkerTerm}

// mandatory faults happen in every run, however short.
var mandatory = []string{faultKill9, faultBridges2, faultBridges3, faultTerminate, faultRestart,
	faultRouteAdd, faultRouteRemove, faultLock, faultRebuild, faultIDType, faultWorkerKill, faultWorkerTerm}

// recovery is how long the system took to dispatch a canary inserted right
// after a fault.
type recovery struct {
	kind string
	at   time.Time
	d    time.Duration
	err  string
}

// interval is a stretch of time when a hand-sent NOTIFY may be lost (no
// bridge listening), from a fault until every bridge listens again.
type interval struct {
	kind     string
	from, to time.Time
}

// routeChange is when the route_add or route_remove statement ran.
type routeChange struct {
	done          bool
	before, after time.Time // just before it was sent, just after it returned
}

type faultStats struct {
	mu          sync.Mutex
	counts      map[string]int
	recoveries  []recovery
	lossy       []interval
	routeAdd    routeChange
	routeRemove routeChange
	terminated  int // backends terminated in all
}

func newFaultStats() *faultStats { return &faultStats{counts: map[string]int{}} }

func (s *faultStats) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[kind]
}

func (s *faultStats) countsText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, k := range faultKinds {
		if n := s.counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, " ")
}

// faultRunner injects faults one after another until the end of the chaos.
// Each fault is followed by a canary whose dispatch marks the recovery;
// the next fault comes a short random pause after that.
type faultRunner struct {
	h           *harness
	rng         *rand.Rand
	start, end  time.Time
	due         map[string]time.Time // one-time faults (or the first of a kind) and when they are due
	scaleDownAt time.Time            // zero while one bridge runs
}

func newFaultRunner(h *harness, start time.Time, d time.Duration) *faultRunner {
	rng := h.rng("faults")
	at := func(lo, hi float64) time.Time {
		return start.Add(time.Duration((lo + (hi-lo)*rng.Float64()) * float64(d)))
	}
	return &faultRunner{h: h, rng: rng, start: start, end: start.Add(d), due: map[string]time.Time{
		faultRouteAdd:    at(0.15, 0.35),
		faultRestart:     at(0.3, 0.7),
		faultRouteRemove: at(0.45, 0.75),
		// The first worker kill comes early: the lanes it stalls (up to
		// 35 s, until a rescuer looks) must be moving again before the
		// final drain. Later ones are random, in the first half only.
		faultWorkerKill: at(0.05, 0.35),
	}}
}

// run injects faults until the end of the chaos, then any mandatory fault
// that has not happened yet.
func (fr *faultRunner) run(ctx context.Context) {
	for time.Now().Before(fr.end) {
		fr.do(ctx, fr.next())
		sleep(ctx, min(between(fr.rng, 500*time.Millisecond, 3*time.Second), max(time.Until(fr.end), 0)))
	}
	for _, k := range mandatory {
		if fr.h.faults.count(k) == 0 {
			fr.h.logf("fault %s has not happened yet: injecting it now", k)
			fr.do(ctx, k)
		}
	}
}

// next picks the next fault: a one-time fault when it is due, the scale-down
// when a multi-bridge stretch is over, else a repeatable fault, those not
// injected yet first.
func (fr *faultRunner) next() string {
	now := time.Now()
	var dueKinds []string
	for k, at := range fr.due {
		if fr.h.faults.count(k) == 0 && now.After(at) {
			dueKinds = append(dueKinds, k)
		}
	}
	if len(dueKinds) > 0 {
		slices.SortFunc(dueKinds, func(a, b string) int { return fr.due[a].Compare(fr.due[b]) })
		return dueKinds[0]
	}
	if !fr.scaleDownAt.IsZero() && now.After(fr.scaleDownAt) {
		return faultScaleDown
	}
	running := len(fr.h.fleet.runningProcs())
	applicable := func(k string) bool {
		switch k {
		case faultBridges2:
			return running < 2
		case faultBridges3:
			return running < 3
		case faultWorkerKill:
			// A head left running by a killed worker holds its lane until
			// a rescuer brings it back, up to 35 s later: no kill in the
			// second half of the chaos, so that this mostly happens before
			// the final drain.
			return now.Before(fr.start.Add(fr.end.Sub(fr.start) / 2))
		}
		return true
	}
	var fresh []string
	for _, k := range []string{faultKill9, faultBridges2, faultBridges3, faultTerminate, faultLock, faultRebuild, faultIDType, faultWorkerKill, faultWorkerTerm} {
		if fr.h.faults.count(k) == 0 && applicable(k) {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) > 0 {
		return fresh[fr.rng.IntN(len(fresh))]
	}
	var k string
	switch r := fr.rng.Float64(); {
	case r < 0.22:
		k = faultKill9
	case r < 0.34:
		k = faultWorkerKill
	case r < 0.39:
		k = faultWorkerTerm
	case r < 0.56:
		k = faultTerminate
	case r < 0.65:
		k = faultLock
	case r < 0.7:
		k = faultRebuild
	case r < 0.75:
		k = faultIDType
	case r < 0.87:
		k = faultBridges2
	default:
		k = faultBridges3
	}
	if !applicable(k) {
		k = faultKill9
	}
	return k
}

// do injects one fault, waits for its recovery and records it.
func (fr *faultRunner) do(ctx context.Context, kind string) {
	h := fr.h
	t0 := time.Now()
	var canary <-chan recovery
	measure := func() { canary = h.measure(ctx, kind, t0) }
	lossy := false
	detail := ""

	switch kind {
	case faultKill9:
		running := h.fleet.runningProcs()
		p := h.fleet.random()
		if p == nil {
			h.errs.add("kill9: no bridge running")
			return
		}
		lossy = len(running) == 1 // the others received the same notifications
		h.fleet.kill(p)
		measure()
		gap := time.Duration(0)
		if fr.rng.IntN(2) == 0 {
			gap = between(fr.rng, 200*time.Millisecond, 2*time.Second)
			sleep(ctx, gap)
		}
		if _, err := h.fleet.start(ctx); err != nil {
			h.errs.add("kill9: restart a bridge: %v", err)
		}
		detail = fmt.Sprintf("killed %s of %d, replaced after %s", p, len(running), gap.Round(time.Millisecond))

	case faultWorkerKill, faultWorkerTerm:
		running := h.crew.runningProcs()
		// Half the time the leader: the heads it ran wait for a new
		// leader's rescuer, which looks as soon as it is elected; else the
		// leader's rescuer looks every 30 s.
		leader := h.crew.leader(ctx)
		var others []*workerProc
		for _, w := range running {
			if w != leader {
				others = append(others, w)
			}
		}
		var p *workerProc
		role := ""
		if leader != nil && (len(others) == 0 || fr.rng.IntN(2) == 0) {
			p, role = leader, " (the leader)"
		} else if len(others) > 0 {
			p = others[fr.rng.IntN(len(others))]
		}
		if p == nil {
			h.errs.add("%s: no worker running", kind)
			return
		}
		// Strike while it runs ordered jobs (up to 3 s), so that a kill
		// leaves heads of lanes running.
		heads := h.crew.waitHolding(ctx, p, 3*time.Second)
		how := "killed"
		if kind == faultWorkerKill {
			h.crew.kill(p)
			h.crew.mu.Lock()
			if role != "" {
				h.crew.leaderKills++
			}
			h.crew.headsKilled += heads
			h.crew.mu.Unlock()
		} else {
			h.crew.stop(p, "fault")
			how = "stopped"
		}
		gap := time.Duration(0)
		if fr.rng.IntN(2) == 0 {
			gap = between(fr.rng, 200*time.Millisecond, 2*time.Second)
			sleep(ctx, gap)
		}
		if _, err := h.crew.start(ctx); err != nil {
			h.errs.add("%s: start a worker: %v", kind, err)
		}
		detail = fmt.Sprintf("%s %s%s of %d, running %d %s jobs; replaced after %s", how, p, role, len(running),
			heads, orderedRoute.Kind, gap.Round(time.Millisecond))

	case faultBridges2, faultBridges3:
		n := 2
		if kind == faultBridges3 {
			n = 3
		}
		measure()
		started := h.fleet.scaleTo(ctx, n)
		fr.scaleDownAt = time.Now().Add(between(fr.rng, 5*time.Second, 15*time.Second))
		detail = fmt.Sprintf("started %d, %d running until %s", len(started), len(h.fleet.runningProcs()), fr.scaleDownAt.Format("15:04:05"))

	case faultScaleDown:
		measure()
		h.fleet.scaleTo(ctx, 1)
		fr.scaleDownAt = time.Time{}
		detail = "back to 1 bridge"

	case faultTerminate:
		gens := h.fleet.listenGens()
		n, err := h.terminateBridgeBackends(ctx)
		if err != nil {
			h.errs.add("terminate: %v", err)
		}
		measure()
		if err := h.fleet.waitRelistened(ctx, gens, 45*time.Second); err != nil {
			h.errs.add("terminate: %v", err)
		}
		lossy = true
		h.faults.mu.Lock()
		h.faults.terminated += n
		h.faults.mu.Unlock()
		detail = fmt.Sprintf("%d backends terminated", n)

	case faultRestart:
		gens := h.fleet.listenGens()
		measure() // its insert retries until the server is back
		if err := h.cluster.Restart(ctx); err != nil {
			h.errs.add("pg_restart: %v", err)
		}
		detail = fmt.Sprintf("server back after %s", time.Since(t0).Round(time.Millisecond))
		if err := h.fleet.waitRelistened(ctx, gens, time.Minute); err != nil {
			h.errs.add("pg_restart: %v", err)
		}
		lossy = true

	case faultRouteAdd, faultRouteRemove:
		rc, err := h.changeRoute(ctx, kind)
		if err != nil {
			h.errs.add("%s: %v", kind, err)
			return
		}
		h.faults.mu.Lock()
		if kind == faultRouteAdd {
			h.faults.routeAdd = rc
		} else {
			h.faults.routeRemove = rc
		}
		h.faults.mu.Unlock()
		t0 = rc.after
		measure()
		detail = fmt.Sprintf("committed between %s and %s", rc.before.Format("15:04:05.000"), rc.after.Format("15:04:05.000"))

	case faultLock:
		hold := between(fr.rng, 2*time.Second, 3*time.Second)
		var waited time.Duration
		err := h.lockEvents(ctx, hold, func(acquired time.Time) {
			waited = acquired.Sub(t0)
			t0 = acquired
			measure()
		})
		if err != nil {
			h.errs.add("table_lock: %v", err)
		}
		detail = fmt.Sprintf("held %s (waited %s for it)", hold.Round(time.Millisecond), waited.Round(time.Millisecond))

	case faultRebuild, faultIDType:
		var err error
		detail, err = h.changeTable(ctx, kind)
		if err != nil {
			h.errs.add("%s: %v", kind, err)
		}
		measure()

	default:
		panic("unknown fault " + kind)
	}

	h.faults.mu.Lock()
	h.faults.counts[kind]++
	h.faults.mu.Unlock()
	var r recovery
	if canary != nil {
		r = <-canary
	}
	if lossy {
		h.faults.mu.Lock()
		h.faults.lossy = append(h.faults.lossy, interval{kind: kind, from: t0, to: time.Now()})
		h.faults.mu.Unlock()
	}
	if canary != nil {
		h.faults.mu.Lock()
		h.faults.recoveries = append(h.faults.recoveries, r)
		h.faults.mu.Unlock()
	}
	if r.err != "" {
		h.errs.add("fault %s at %s: no recovery: %s", kind, t0.Format("15:04:05.000"), r.err)
	}
	if canary == nil {
		h.logf("fault %-12s %s", kind, detail) // no canary: dispatch does not depend on workers
		return
	}
	h.logf("fault %-12s %s; recovered in %s", kind, detail, r.d.Round(time.Millisecond))
}

// measure inserts a canary event right away and reports, on the channel
// returned, how long after t0 it was recorded in notified_dispatch.
func (h *harness) measure(ctx context.Context, kind string, t0 time.Time) <-chan recovery {
	ch := make(chan recovery, 1)
	go func() {
		deadline := t0.Add(90 * time.Second)
		id, err := h.insertCanary(ctx, deadline)
		if err != nil {
			ch <- recovery{kind: kind, at: t0, d: time.Since(t0), err: err.Error()}
			return
		}
		key := strconv.FormatInt(id, 10)
		for {
			var found bool
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := h.ctl.QueryRow(qctx, `SELECT EXISTS (SELECT 1 FROM notified.notified_dispatch
				WHERE channel = $1 AND event_id = $2)`, channel, key).Scan(&found)
			cancel()
			if err == nil && found {
				ch <- recovery{kind: kind, at: t0, d: time.Since(t0)}
				return
			}
			if time.Now().After(deadline) {
				ch <- recovery{kind: kind, at: t0, d: time.Since(t0),
					err: fmt.Sprintf("canary %s not recorded in notified_dispatch within %s (last error: %v)", key, deadline.Sub(t0), err)}
				return
			}
			sleep(ctx, 25*time.Millisecond)
		}
	}()
	return ch
}

// terminateBridgeBackends terminates every backend of every bridge: their
// pools' connections and their listeners.
func (h *harness) terminateBridgeBackends(ctx context.Context) (int, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n int
	err := h.ctl.QueryRow(qctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE application_name LIKE 'notified-bridge%' AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}

// changeRoute adds the route of "added" or removes the route of "removed",
// by SQL, retrying for up to 30 s, and returns when it happened.
func (h *harness) changeRoute(ctx context.Context, kind string) (routeChange, error) {
	rc := routeChange{before: time.Now()}
	deadline := rc.before.Add(30 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		if kind == faultRouteAdd {
			r := addedRoute
			_, err = h.ctl.Exec(qctx, `INSERT INTO notified.notified_route (event_name, kind, queue, priority, max_attempts)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, r.Event, r.Kind, r.Queue, r.Priority, r.MaxAttempts)
		} else {
			_, err = h.ctl.Exec(qctx, `DELETE FROM notified.notified_route WHERE event_name = $1 AND kind = $2`,
				removedRoute.Event, removedRoute.Kind)
		}
		cancel()
		if err == nil {
			rc.after = time.Now()
			rc.done = true
			return rc, nil
		}
		if time.Now().After(deadline) {
			return rc, err
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// withEventsLocked runs fn in a transaction that holds ACCESS EXCLUSIVE on
// the events table (waiting up to 20 s for it), then commits, all within
// timeout: no producer or bridge reads or writes the table until fn returns
// and the transaction ends.
func (h *harness) withEventsLocked(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tx pgx.Tx) error) error {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tx, err := h.ctl.Begin(qctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(qctx, "SET LOCAL lock_timeout = '20s'; LOCK TABLE app.events IN ACCESS EXCLUSIVE MODE"); err != nil {
		return err
	}
	if err := fn(qctx, tx); err != nil {
		return err
	}
	return tx.Commit(qctx)
}

// lockEvents holds ACCESS EXCLUSIVE on the events table for hold, in a
// transaction; acquired runs as soon as the lock is held.
func (h *harness) lockEvents(ctx context.Context, hold time.Duration, acquired func(time.Time)) error {
	return h.withEventsLocked(ctx, 30*time.Second, func(context.Context, pgx.Tx) error {
		acquired(time.Now())
		time.Sleep(hold)
		return nil
	})
}

// changeTable changes the events table under load, in one transaction with
// the capture trigger's install, as a migration would: table_rebuild copies
// it into a new table (a new oid) and drops the old one; id_type flips its
// id column between bigint and integer. Every event committed before,
// during or after must still be dispatched exactly once.
func (h *harness) changeTable(ctx context.Context, kind string) (string, error) {
	var detail string
	err := h.withEventsLocked(ctx, 60*time.Second, func(ctx context.Context, tx pgx.Tx) error {
		var change string
		switch kind {
		case faultRebuild:
			var oid uint32
			if _, err := tx.Exec(ctx, `ALTER SEQUENCE app.events_id_seq OWNED BY NONE;
				CREATE TABLE app.events_rebuilt (LIKE app.events INCLUDING ALL);
				INSERT INTO app.events_rebuilt SELECT * FROM app.events;
				DROP TABLE app.events;
				ALTER TABLE app.events_rebuilt RENAME TO events;
				ALTER SEQUENCE app.events_id_seq OWNED BY app.events.id`); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, "SELECT 'app.events'::regclass::oid").Scan(&oid); err != nil {
				return err
			}
			change = fmt.Sprintf("rebuilt as oid %d", oid)
		case faultIDType:
			var typ string
			if err := tx.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'app.events'::regclass AND attname = 'id'").Scan(&typ); err != nil {
				return err
			}
			to := "integer"
			if typ == "integer" {
				to = "bigint"
			}
			if _, err := tx.Exec(ctx, "ALTER TABLE app.events ALTER COLUMN id TYPE "+to); err != nil {
				return err
			}
			change = "id column " + typ + " -> " + to
		}
		// Installed again in the same transaction: a new table needs its
		// trigger before the first insert commits, and a new id type needs
		// the producers' sessions to plan the trigger again.
		if _, err := trigger.Install(ctx, tx, trigger.Options{Schema: "notified", Table: table, Channel: channel}); err != nil {
			return err
		}
		detail = change
		return nil
	})
	return detail, err
}
