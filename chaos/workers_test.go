package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	n       int
	logPath string
	cmd     *exec.Cmd
	watch   *workerWatcher
	done    chan struct{}
	waitErr error // once done is closed

	signalled atomic.Bool // we killed or stopped it
	how       string      // guarded by the crew's mutex
}

func (p *workerProc) String() string {
	return fmt.Sprintf("worker %d (pid %d)", p.n, p.cmd.Process.Pid)
}

func (p *workerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// workerWatcher reads a worker's log as it is written: whether it started
// and the lines that reveal a crash.
type workerWatcher struct {
	mu      sync.Mutex
	partial []byte
	started bool
	errors  int
	crashes []string
}

func (w *workerWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := slices.Index(w.partial, '\n')
		if i < 0 {
			break
		}
		l := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		switch {
		case strings.Contains(l, `"msg":"worker started"`):
			w.started = true
		case strings.Contains(l, `"level":"ERROR"`):
			w.errors++
		case strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.Contains(l, "WARNING: DATA RACE"):
			w.crashes = append(w.crashes, l)
		}
	}
	return len(p), nil
}

func (w *workerWatcher) isStarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// crew starts, kills and stops workers.
type crew struct {
	h      *harness
	binary string
	kinds  string

	mu  sync.Mutex
	rng *rand.Rand
	seq int
	all []*workerProc
	run []*workerProc

	startFailures   int
	sigkills, terms int
	leaderKills     int // SIGKILLs of the leader
	headsKilled     int // ordered jobs running in the workers SIGKILLed, when they were
}

func newCrew(h *harness, binary string) *crew {
	var kinds []string
	for _, r := range append(append([]route(nil), initialRoutes...), addedRoute) {
		kinds = append(kinds, r.Kind)
	}
	return &crew{h: h, binary: binary, kinds: strings.Join(kinds, ","), rng: h.rng("crew")}
}

// buildWorker builds the worker program once, into a temporary directory.
func buildWorker(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chaosworker")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "github.com/notified/notified/chaos/internal/chaosworker")
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return bin
}

func (c *crew) launch() (*workerProc, error) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	c.mu.Unlock()
	logPath := filepath.Join(c.h.logDir, fmt.Sprintf("worker-%02d.log", n))
	file, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &workerProc{n: n, logPath: logPath, watch: &workerWatcher{}, done: make(chan struct{}),
		cmd: exec.Command(c.binary, "-schema", schema, "-kinds", c.kinds, "-ordered-kind", orderedRoute.Kind,
			"-runs-table", "app.lane_runs", "-max-workers", "8", "-rescue-after", workerRescueAfter.String())}
	p.cmd.Env = bridgeEnv(c.h.url)
	if *flagRaceBridge {
		p.cmd.Env = append(p.cmd.Env, "GORACE=halt_on_error=0")
	}
	out := io.MultiWriter(file, p.watch)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		file.Close()
		return nil, fmt.Errorf("start chaosworker: %w", err)
	}
	c.mu.Lock()
	c.all = append(c.all, p)
	c.mu.Unlock()
	go func() {
		p.waitErr = p.cmd.Wait()
		file.Close()
		c.exited(p)
	}()
	return p, nil
}

func (c *crew) exited(p *workerProc) {
	c.mu.Lock()
	c.run = slices.DeleteFunc(c.run, func(q *workerProc) bool { return q == p })
	if !p.signalled.Load() {
		if p.watch.isStarted() {
			p.how = "exited on its own: " + exitText(p.waitErr)
			c.h.errs.add("%s exited on its own while running (%s); log %s", p, exitText(p.waitErr), p.logPath)
		} else {
			p.how = "failed to start: " + exitText(p.waitErr)
		}
	}
	c.mu.Unlock()
	close(p.done)
}

// start starts a worker and waits until its client works, trying again
// (the database may be restarting) for up to a minute.
func (c *crew) start(ctx context.Context) (*workerProc, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := c.launch()
		if err != nil {
			return nil, err
		}
		for !p.watch.isStarted() && !p.exited() && time.Now().Before(deadline) {
			sleep(ctx, 20*time.Millisecond)
		}
		if p.watch.isStarted() {
			c.mu.Lock()
			if !p.exited() {
				c.run = append(c.run, p)
			}
			c.mu.Unlock()
			return p, nil
		}
		if !p.exited() {
			c.kill(p)
			return nil, fmt.Errorf("%s did not start within a minute; log %s", p, p.logPath)
		}
		<-p.done
		c.mu.Lock()
		c.startFailures++
		how := p.how
		c.mu.Unlock()
		c.h.logf("%s failed to start (%s); trying again", p, how)
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no worker could start within a minute; last log %s", p.logPath)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (c *crew) kill(p *workerProc) {
	p.signalled.Store(true)
	c.mu.Lock()
	p.how = "killed (SIGKILL)"
	c.mu.Unlock()
	_ = p.cmd.Process.Kill()
	<-p.done
	c.mu.Lock()
	c.sigkills++
	c.mu.Unlock()
}

// stop sends SIGTERM and requires a clean exit (0) within 15 s: River
// lets the jobs that run finish.
func (c *crew) stop(p *workerProc, why string) {
	p.signalled.Store(true)
	c.mu.Lock()
	p.how = "stopped (SIGTERM, " + why + ")"
	c.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			c.h.errs.add("%s exited with %s after SIGTERM (%s), want exit 0; log %s", p, exitText(p.waitErr), why, p.logPath)
		}
	case <-time.After(15 * time.Second):
		c.h.errs.add("%s did not exit within 15s of SIGTERM (%s); killed; log %s", p, why, p.logPath)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	c.mu.Lock()
	c.terms++
	c.mu.Unlock()
}

// killAll kills whatever still runs, when the test ends.
func (c *crew) killAll() {
	c.mu.Lock()
	all := append([]*workerProc(nil), c.all...)
	c.mu.Unlock()
	for _, p := range all {
		if !p.exited() {
			p.signalled.Store(true)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func (c *crew) runningProcs() []*workerProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*workerProc(nil), c.run...)
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
	return c.sigkills, c.terms
}

func (c *crew) logPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.all {
		how := p.how
		if how == "" {
			how = "running"
		}
		out = append(out, fmt.Sprintf("  %s  [%s]", p.logPath, how))
	}
	return out
}

func (c *crew) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := 0
	for _, p := range c.all {
		p.watch.mu.Lock()
		errs += p.watch.errors
		p.watch.mu.Unlock()
	}
	return fmt.Sprintf("%d processes started (%d SIGKILLed, %d of them the leader, running %d %s jobs in all; %d stopped by SIGTERM; %d start attempts failed while Postgres was away); %d ERROR log lines in all (expected when Postgres restarts)",
		len(c.all), c.sigkills, c.leaderKills, c.headsKilled, orderedRoute.Kind, c.terms, c.startFailures, errs)
}

// scanLogs fails the test on any panic, fatal error or data race a worker
// printed.
func (c *crew) scanLogs() {
	c.mu.Lock()
	all := append([]*workerProc(nil), c.all...)
	c.mu.Unlock()
	for _, p := range all {
		p.watch.mu.Lock()
		crashes := append([]string(nil), p.watch.crashes...)
		p.watch.mu.Unlock()
		for _, l := range crashes {
			c.h.errs.add("%s printed %q; log %s", p, l, p.logPath)
		}
	}
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
