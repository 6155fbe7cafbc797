package chaos

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Workers: River clients in processes of their own (chaos/internal/
// chaosworker), working the default queue, so that the jobs of the ordered
// route run, and run while workers are killed.

// workersRunning is how many worker processes run during the chaos.
const workersRunning = 2

// workerRescueAfter is the workers' RescueStuckJobsAfter: a head left
// running by a killed worker is rescued by the leader's rescuer, which
// looks every 30 s (River's interval), once it is this old.
const workerRescueAfter = 5 * time.Second

// workerProc is one chaosworker subprocess.
type workerProc struct {
	proc
	watch *workerWatcher
}

func (p *workerProc) lines() *logLines { return &p.watch.logLines }

// workerWatcher reads a worker's log as it is written: whether it started
// and the lines that reveal a crash.
type workerWatcher struct {
	logLines
	started bool
}

func (w *workerWatcher) Write(p []byte) (int, error) {
	w.feed(p, func(l string) {
		if strings.Contains(l, `"msg":"worker started"`) {
			w.started = true
		}
	})
	return len(p), nil
}

func (w *workerWatcher) isStarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// crew starts, kills and stops workers.
type crew struct {
	procGroup[*workerProc]
	binary string
	kinds  string

	// Guarded by the mutex.
	leaderKills int // SIGKILLs of the leader
	headsKilled int // ordered jobs running in the workers SIGKILLed, when they were
}

func newCrew(h *harness, binary string) *crew {
	var kinds []string
	for _, r := range append(append([]route(nil), initialRoutes...), addedRoute) {
		kinds = append(kinds, r.Kind)
	}
	// A worker that logged it started and then ended crashed, even if
	// start had not seen it yet.
	c := &crew{procGroup: procGroup[*workerProc]{h: h, kind: "worker", rng: h.rng("crew"), readyVerb: "start",
		isReady: func(p *workerProc) bool { return p.watch.isStarted() }, crashIfReady: true},
		binary: binary, kinds: strings.Join(kinds, ",")}
	c.spawn = c.spawnWorker
	return c
}

// buildWorker builds the worker program once, into a temporary directory.
func buildWorker(t *testing.T, race bool) string {
	t.Helper()
	return buildProgram(t, "github.com/notified/notified/chaos/internal/chaosworker", race)
}

// spawnWorker makes a worker process.
func (c *crew) spawnWorker() (*workerProc, io.Writer) {
	p := &workerProc{proc: proc{cmd: exec.Command(c.binary, "-schema", schema, "-kinds", c.kinds, "-ordered-kind", orderedRoute.Kind,
		"-runs-table", "app.lane_runs", "-max-workers", "8", "-rescue-after", workerRescueAfter.String())}, watch: &workerWatcher{}}
	return p, p.watch
}

// stop sends SIGTERM and requires a clean exit (0) within 15 s: River
// lets the jobs that run finish.
func (c *crew) stop(p *workerProc, why string) {
	c.stopWith(p, why, 0, "exit 0")
}

// leader returns the running worker whose River client is the leader
// (River's river_leader names it by its client ID, "chaosworker-PID"), or
// nil.
func (c *crew) leader(ctx context.Context) *workerProc {
	var id string
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.h.ctl.QueryRow(qctx, "SELECT leader_id FROM notified.river_leader WHERE expires_at > now()").Scan(&id); err != nil {
		return nil
	}
	for _, p := range c.runningProcs() {
		if id == p.clientID() {
			return p
		}
	}
	return nil
}

// clientID is the River client ID of the worker.
func (p *workerProc) clientID() string { return fmt.Sprintf("chaosworker-%d", p.cmd.Process.Pid) }

// waitHolding waits up to timeout until worker p runs jobs of the ordered
// route, and returns how many it runs then (0 if it never did).
func (c *crew) waitHolding(ctx context.Context, p *workerProc, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.h.ctl.QueryRow(qctx, `SELECT count(*) FROM notified.river_job
			WHERE kind = $1 AND state = 'running' AND attempted_by[array_upper(attempted_by, 1)] = $2`,
			orderedRoute.Kind, p.clientID()).Scan(&n)
		cancel()
		if (err == nil && n > 0) || time.Now().After(deadline) {
			return n
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

func (c *crew) counts() (kills, terms int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sigkills, c.sigterms
}

func (c *crew) logPaths() []string {
	return c.procGroup.logPaths(func(p *workerProc) string {
		if p.how == "" {
			return "running"
		}
		return p.how
	})
}

func (c *crew) summary() string {
	errs := c.logErrors()
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d processes started (%d SIGKILLed, %d of them the leader, running %d %s jobs in all; %d stopped by SIGTERM; %d start attempts failed while Postgres was away); %d ERROR log lines in all (expected when Postgres restarts)",
		len(c.all), c.sigkills, c.leaderKills, c.headsKilled, orderedRoute.Kind, c.sigterms, c.startFailures, errs)
}

// waitLanesDone waits until every job of the ordered route is finalized
// and no lane is left, with workers and a bridge (whose lane waker
// advances lanes a finalizing transaction found locked) running. It
// reports whether that happened before timeout.
func (h *harness) waitLanesDone(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	lastPrint := time.Time{}
	for {
		var open, lanes int
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := h.ctl.QueryRow(qctx, `SELECT
			(SELECT count(*) FROM notified.river_job WHERE kind = $1 AND finalized_at IS NULL),
			(SELECT count(*) FROM notified.notified_lane)`, orderedRoute.Kind).Scan(&open, &lanes)
		cancel()
		if err == nil && open == 0 && lanes == 0 {
			h.logf("lanes done: every %s job finalized, no lane left", orderedRoute.Kind)
			return true
		}
		if time.Now().After(deadline) {
			h.errs.add("ordered jobs not done %s after the drain: %d %s jobs not finalized, %d lanes left (last error: %v)",
				timeout, open, orderedRoute.Kind, lanes, err)
			return false
		}
		if time.Since(lastPrint) >= 5*time.Second {
			h.logf("waiting for the lanes: %d %s jobs not finalized, %d lanes (err %v)", open, orderedRoute.Kind, lanes, err)
			lastPrint = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}
