package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The checks of the ordered route: its jobs whose events have a key form
// one lane per key, and must have run one at a time, in lane order, and in
// the order their events were committed where the producers know that
// order; every job ran to completion, and no lane is left.

// orderedResult is what the checks of the ordered route found.
type orderedResult struct {
	wait time.Duration // from the drain to every ordered job finalized
	done bool          // that happened in time

	jobs, keyed, unkeyed int // jobs of the route; with a lane; without
	keys                 int // distinct lane keys
	maxLane              int // most jobs of one lane made and not yet finalized at once
	maxLaneKey           string
	completed            int

	attempts       int           // attempts recorded by the handler
	cut            int           // attempts with no finish: the worker (or the database) went away
	cutByKill      int           // of those, in a worker we SIGKILLed
	redone         int           // attempts that finished, then the job ran again (killed before River recorded it)
	multiAttempt   int           // jobs that needed more than one attempt
	longestRetry   time.Duration // a job's first attempt started to its last one started
	rescued        int           // jobs River's rescuer brought back (an error "Stuck job rescued")
	workerKills    int
	workerStops    int
	overlaps       int // pairs of jobs of one key that ran at once
	laneInversions int // a job of a key ran before a job of the same key made before it
	pairsKnown     int // pairs of keyed events of one key whose commit order is known
	pairsAll       int
	commitInverted int             // of those, pairs that ran against their commit order
	handoffs       []time.Duration // a job's handler finished to the next job of its lane started, when that one was waiting
	lanesLeft      int
	wakesLeft      int
	pendingLeft    int // jobs of any kind still pending

	verdict string
	ok      bool
}

// orderedJob is a job of the ordered route with its attempts.
type orderedJob struct {
	id        int64
	eventID   int64
	lane      *string
	state     string
	attempt   int
	created   time.Time
	finalized *time.Time
	rescued   bool
	runs      []laneRun

	start, end time.Time // its span: first attempt's start to the last finish
}

// laneRun is one attempt, as the worker's handler recorded it.
type laneRun struct {
	attempt    int
	pid        int
	lane, key  *string
	start      time.Time
	finished   *time.Time
	eventIDTxt string
}

// checkOrdered runs the checks of the ordered route; failures go to probs.
func (h *harness) checkOrdered(ctx context.Context, probs *problems) orderedResult {
	res := orderedResult{wait: h.lanesTook, done: h.lanesDone}
	db := h.ctl

	jobs := map[int64]*orderedJob{}
	if err := collect(ctx, db, `SELECT id, (args->>'event_id')::bigint, metadata->'notified'->>'lane', state::text, attempt,
			created_at, finalized_at,
			EXISTS (SELECT 1 FROM unnest(errors) AS e WHERE e->>'error' LIKE 'Stuck job rescued%')
		FROM notified.river_job WHERE kind = $1`, func(rows pgx.Rows) error {
		j := &orderedJob{}
		if err := rows.Scan(&j.id, &j.eventID, &j.lane, &j.state, &j.attempt, &j.created, &j.finalized, &j.rescued); err != nil {
			return err
		}
		jobs[j.id] = j
		return nil
	}, orderedRoute.Kind); err != nil {
		h.errs.add("read the jobs of %s: %v", orderedRoute.Kind, err)
		return res
	}
	if err := collect(ctx, db, `SELECT job_id, event_id, lane, payload_key, attempt, pid, started_at, finished_at
		FROM app.lane_runs`, func(rows pgx.Rows) error {
		var jobID int64
		var r laneRun
		if err := rows.Scan(&jobID, &r.eventIDTxt, &r.lane, &r.key, &r.attempt, &r.pid, &r.start, &r.finished); err != nil {
			return err
		}
		j := jobs[jobID]
		if j == nil {
			probs.add("attempt of no ordered job", "job %d (event %s) attempt %d", jobID, r.eventIDTxt, r.attempt)
			return nil
		}
		j.runs = append(j.runs, r)
		return nil
	}); err != nil {
		h.errs.add("read app.lane_runs: %v", err)
		return res
	}
	eventKeys := map[int64]*string{}
	if err := collect(ctx, db, "SELECT id, (payload->'key')::text FROM app.events WHERE name = $1", func(rows pgx.Rows) error {
		var id int64
		var key *string
		if err := rows.Scan(&id, &key); err != nil {
			return err
		}
		eventKeys[id] = key
		return nil
	}, nameOrdered); err != nil {
		h.errs.add("read the keys of the %s events: %v", nameOrdered, err)
		return res
	}
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM notified.notified_lane), (SELECT count(*) FROM notified.notified_lane_wake),
		(SELECT count(*) FROM notified.river_job WHERE state = 'pending')`).Scan(&res.lanesLeft, &res.wakesLeft, &res.pendingLeft); err != nil {
		h.errs.add("count the lanes left: %v", err)
	}
	if res.lanesLeft > 0 {
		probs.add("lanes left at the end", "%d rows in notified_lane", res.lanesLeft)
	}
	if res.wakesLeft > 0 {
		probs.add("lane wake-ups left at the end", "%d rows in notified_lane_wake", res.wakesLeft)
	}
	if res.pendingLeft > 0 {
		probs.add("jobs left pending at the end", "%d jobs", res.pendingLeft)
	}

	killed := h.crew.killedPIDs()
	byKey := map[string][]*orderedJob{}
	for _, j := range jobs {
		res.jobs++
		if j.state == "completed" {
			res.completed++
		} else {
			probs.add("ordered job not completed", "job %d (event %d, lane %s): %s after %d attempts", j.id, j.eventID, deref(j.lane), j.state, j.attempt)
		}
		if want := eventKeys[j.eventID]; deref(want) != deref(j.lane) {
			probs.add("lane differs from the event's key", "job %d (event %d): lane %s, payload.key %s", j.id, j.eventID, deref(j.lane), deref(want))
		}
		if j.rescued {
			res.rescued++
		}
		if j.attempt > 1 {
			res.multiAttempt++
		}
		slices.SortFunc(j.runs, func(a, b laneRun) int { return a.start.Compare(b.start) })
		var last *laneRun
		for i := range j.runs {
			r := &j.runs[i]
			res.attempts++
			if r.finished == nil {
				res.cut++
				if killed[r.pid] {
					res.cutByKill++
				}
			} else if r.attempt != j.attempt {
				res.redone++
			}
			if r.attempt == j.attempt {
				last = r
			}
			if deref(r.lane) != deref(j.lane) || deref(r.key) != deref(j.lane) {
				probs.add("handler saw another lane or key", "job %d attempt %d: lane %s, payload.key %s; job row's lane %s",
					j.id, r.attempt, deref(r.lane), deref(r.key), deref(j.lane))
			}
			if r.attempt > j.attempt {
				probs.add("attempt beyond the job's", "job %d: attempt %d recorded, job row says %d", j.id, r.attempt, j.attempt)
			}
		}
		if j.lane == nil {
			res.unkeyed++
		} else {
			res.keyed++
			byKey[*j.lane] = append(byKey[*j.lane], j)
		}
		if len(j.runs) == 0 {
			if j.state == "completed" {
				probs.add("completed ordered job with no attempt recorded", "job %d (event %d)", j.id, j.eventID)
			}
			continue
		}
		j.start = j.runs[0].start
		res.longestRetry = max(res.longestRetry, j.runs[len(j.runs)-1].start.Sub(j.start))
		for _, r := range j.runs {
			if r.finished != nil && r.finished.After(j.end) {
				j.end = *r.finished
			}
		}
		if j.state == "completed" && (last == nil || last.finished == nil) {
			probs.add("completed ordered job whose last attempt did not finish", "job %d (event %d) attempt %d", j.id, j.eventID, j.attempt)
		}
	}
	res.keys = len(byKey)
	res.workerKills, res.workerStops = h.crew.counts()

	led := h.led
	led.mu.Lock()
	defer led.mu.Unlock()
	for key, js := range byKey {
		// The lane's length over time: +1 when a job was made, -1 when it
		// was finalized.
		type step struct {
			at time.Time
			d  int
		}
		var steps []step
		for _, j := range js {
			steps = append(steps, step{j.created, 1})
			if j.finalized != nil {
				steps = append(steps, step{*j.finalized, -1})
			}
		}
		slices.SortFunc(steps, func(a, b step) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.d - b.d
		})
		n := 0
		for _, s := range steps {
			n += s.d
			if n > res.maxLane {
				res.maxLane, res.maxLaneKey = n, key
			}
		}

		// Run order: by the start of each job's first attempt.
		var ran []*orderedJob
		for _, j := range js {
			if len(j.runs) > 0 {
				ran = append(ran, j)
			}
		}
		slices.SortFunc(ran, func(a, b *orderedJob) int { return a.start.Compare(b.start) })
		var prev *orderedJob // the job that ended last so far
		for i, j := range ran {
			if prev != nil && j.start.Before(prev.end) {
				res.overlaps++
				probs.add("jobs of one key ran at once", "key %s: job %d (event %d) started %s, before job %d (event %d) ended %s",
					key, j.id, j.eventID, j.start.Format("15:04:05.000000"), prev.id, prev.eventID, prev.end.Format("15:04:05.000000"))
			}
			if prev != nil && j.created.Before(prev.end) && !j.start.Before(prev.end) {
				res.handoffs = append(res.handoffs, j.start.Sub(prev.end))
			}
			if prev == nil || j.end.After(prev.end) {
				prev = j
			}
			// Lane order is job id order: dispatches of a channel with an
			// ordered route are serialized, and each inserts its ordered
			// jobs in the order it appends them to their lanes.
			if i > 0 && j.id < ran[i-1].id {
				res.laneInversions++
				probs.add("jobs of one key ran out of lane order", "key %s: job %d (event %d) ran after job %d (event %d), made after it",
					key, j.id, j.eventID, ran[i-1].id, ran[i-1].eventID)
			}
		}

		// Commit order, where the producers know it: an event whose
		// commit returned before another event's INSERT was sent committed
		// first, and its job must have run first.
		for a := 0; a < len(ran); a++ {
			ea, okA := led.committed[ran[a].eventID]
			for b := a + 1; b < len(ran); b++ {
				res.pairsAll++
				eb, okB := led.committed[ran[b].eventID]
				if !okA || !okB {
					continue
				}
				switch {
				case ea.end < eb.ins: // a committed before b: as it ran
					res.pairsKnown++
				case eb.end < ea.ins: // b committed before a, but ran after it
					res.pairsKnown++
					res.commitInverted++
					probs.add("jobs of one key ran against commit order", "key %s: event %d (commit returned %s) ran after event %d (INSERT sent %s)",
						key, ran[b].eventID, time.Unix(0, eb.end).Format("15:04:05.000000"), ran[a].eventID, time.Unix(0, ea.ins).Format("15:04:05.000000"))
				}
			}
		}
	}

	var failed []string
	if !res.done {
		failed = append(failed, "not every ordered job finalized in time")
	}
	if res.overlaps > 0 {
		failed = append(failed, fmt.Sprintf("%d overlaps", res.overlaps))
	}
	if res.laneInversions > 0 {
		failed = append(failed, fmt.Sprintf("%d runs out of lane order", res.laneInversions))
	}
	if res.commitInverted > 0 {
		failed = append(failed, fmt.Sprintf("%d pairs against commit order", res.commitInverted))
	}
	if n := res.jobs - res.completed; n > 0 {
		failed = append(failed, fmt.Sprintf("%d jobs not completed", n))
	}
	if res.lanesLeft+res.wakesLeft+res.pendingLeft > 0 {
		failed = append(failed, fmt.Sprintf("%d lanes, %d wake-ups, %d pending jobs left", res.lanesLeft, res.wakesLeft, res.pendingLeft))
	}
	if res.keyed == 0 {
		failed = append(failed, "no keyed job ran: nothing was checked")
	}
	res.ok = len(failed) == 0
	if res.ok {
		res.verdict = fmt.Sprintf("IN ORDER: the jobs of each key ran one at a time, in lane order, and in commit order for all %d pairs whose order the producers know",
			res.pairsKnown)
	} else {
		res.verdict = "FAILED: " + strings.Join(failed, ", ")
	}
	return res
}

// killedPIDs returns the pids of the workers we SIGKILLed.
func (c *crew) killedPIDs() map[int]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := map[int]bool{}
	for _, p := range c.all {
		if strings.HasPrefix(p.how, "killed") {
			pids[p.cmd.Process.Pid] = true
		}
	}
	return pids
}

// summaryLines are the ordered route's lines of the summary.
func (r orderedResult) summaryLines(line func(label, format string, args ...any)) {
	line("ordered route", "%s -> %s ordered by %s: %d jobs (%d in lanes of %d keys, %d without a key), %d completed",
		nameOrdered, orderedRoute.Kind, laneKeyPath, r.jobs, r.keyed, r.keys, r.unkeyed, r.completed)
	line("", "longest lane %d jobs (key %s); all finalized %s after the drain", r.maxLane, r.maxLaneKey, r.wait.Round(100*time.Millisecond))
	line("", "%d attempts: %d cut short (%d in a SIGKILLed worker), %d finished and ran again; %d jobs took more than one, %d rescued by River's rescuer",
		r.attempts, r.cut, r.cutByKill, r.redone, r.multiAttempt, r.rescued)
	line("", "workers: %d SIGKILLed, %d stopped by SIGTERM; longest from a job's first attempt to its last: %s",
		r.workerKills, r.workerStops, r.longestRetry.Round(time.Millisecond))
	if len(r.handoffs) > 0 {
		slices.Sort(r.handoffs)
		line("", "hand-off in a lane (a job's handler finished to the next one started): p50 %s, p99 %s, max %s over %d",
			r.handoffs[len(r.handoffs)/2].Round(time.Millisecond), r.handoffs[len(r.handoffs)*99/100].Round(time.Millisecond),
			r.handoffs[len(r.handoffs)-1].Round(time.Millisecond), len(r.handoffs))
	}
	line("", "overlaps %d, out of lane order %d, against commit order %d of %d pairs whose commit order is known (of %d pairs in all)",
		r.overlaps, r.laneInversions, r.commitInverted, r.pairsKnown, r.pairsAll)
	line("", "left: %d lanes, %d wake-ups, %d pending jobs", r.lanesLeft, r.wakesLeft, r.pendingLeft)
	line("ordering verdict", "%s", r.verdict)
}
