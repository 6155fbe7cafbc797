package chaos

import (
	"bytes"
	"context"
	"errors"
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
	"time"
)

// bridgeProc is one `notified-bridge run` subprocess.
type bridgeProc struct {
	n       int
	args    string
	logPath string
	cmd     *exec.Cmd
	watch   *logWatcher
	done    chan struct{}
	waitErr error // once done is closed

	signalled atomic.Bool // we killed or stopped it

	// Guarded by the fleet's mutex.
	up       bool   // it listened at least once
	dead     bool   // the process ended
	how      string // how it ended
	graceful bool   // it exited 143 after SIGTERM
}

func (p *bridgeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *bridgeProc) String() string {
	return fmt.Sprintf("bridge %d (pid %d)", p.n, p.cmd.Process.Pid)
}

// logWatcher reads a bridge's JSON log as it is written: it counts the
// listener's (re)connections and the lines that reveal a crash.
type logWatcher struct {
	mu        sync.Mutex
	partial   []byte
	listenGen int  // "listening" lines seen
	listening bool // the last listener event was "listening"
	errors    int  // level ERROR lines
	crashes   []string
}

func (w *logWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func (w *logWatcher) line(l string) {
	switch {
	case strings.Contains(l, `"msg":"listening"`):
		w.listenGen++
		w.listening = true
	case strings.Contains(l, `"msg":"listener disconnected; reconnecting"`):
		w.listening = false
	}
	if strings.Contains(l, `"level":"ERROR"`) {
		w.errors++
	}
	if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.Contains(l, "WARNING: DATA RACE") {
		w.crashes = append(w.crashes, l)
	}
}

func (w *logWatcher) gen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.listenGen
}

func (w *logWatcher) state() (gen int, listening bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.listenGen, w.listening
}

// fleet starts, kills and stops bridges, and notices the ones that exit on
// their own.
type fleet struct {
	h   *harness
	mu  sync.Mutex
	rng *rand.Rand
	seq int
	all []*bridgeProc
	run []*bridgeProc // running and listened at least once

	startFailures int
	sigkills      int
	sigterms      int
}

func newFleet(h *harness) *fleet {
	return &fleet{h: h, rng: h.rng("fleet")}
}

// launch starts one bridge process with a random batch size and concurrency.
func (f *fleet) launch() (*bridgeProc, error) {
	f.mu.Lock()
	f.seq++
	n := f.seq
	batch := []int{50, 200, 1000}[f.rng.IntN(3)]
	conc := 1 + f.rng.IntN(3)
	f.mu.Unlock()

	args := []string{"--schema", schema, "--log-format", "json", "run", "--table", table, "--channel", channel,
		"--poll-interval", "200ms", "--missing-grace", "1s",
		"--batch-size", fmt.Sprint(batch), "--concurrency", fmt.Sprint(conc)}
	logPath := filepath.Join(f.h.logDir, fmt.Sprintf("bridge-%02d.log", n))
	file, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &bridgeProc{n: n, args: fmt.Sprintf("batch %d, concurrency %d", batch, conc), logPath: logPath,
		cmd: exec.Command(f.h.binary, args...), watch: &logWatcher{}, done: make(chan struct{})}
	p.cmd.Env = bridgeEnv(f.h.url)
	if *flagRaceBridge {
		p.cmd.Env = append(p.cmd.Env, "GORACE=halt_on_error=0")
	}
	out := io.MultiWriter(file, p.watch)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		file.Close()
		return nil, fmt.Errorf("start notified-bridge: %w", err)
	}
	f.mu.Lock()
	f.all = append(f.all, p)
	f.mu.Unlock()
	go func() {
		p.waitErr = p.cmd.Wait()
		file.Close()
		f.exited(p)
	}()
	return p, nil
}

// exited runs when a bridge process ends.
func (f *fleet) exited(p *bridgeProc) {
	f.mu.Lock()
	f.run = slices.DeleteFunc(f.run, func(q *bridgeProc) bool { return q == p })
	p.dead = true
	switch {
	case p.signalled.Load():
	case p.up:
		p.how = "exited on its own: " + exitText(p.waitErr)
		f.h.errs.add("%s exited on its own while running (%s); log %s", p, exitText(p.waitErr), p.logPath)
	default:
		p.how = "failed to start: " + exitText(p.waitErr)
	}
	f.mu.Unlock()
	close(p.done)
}

// setHow records how we ended a bridge.
func (f *fleet) setHow(p *bridgeProc, how string) {
	f.mu.Lock()
	p.how = how
	f.mu.Unlock()
}

func (f *fleet) howEnded(p *bridgeProc) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return p.how
}

func exitText(err error) string {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "exit 0"
	case errors.As(err, &exitErr):
		return exitErr.String()
	default:
		return err.Error()
	}
}

// start starts a bridge and waits until it listens, trying again (the
// database may be restarting) for up to a minute.
func (f *fleet) start(ctx context.Context) (*bridgeProc, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := f.launch()
		if err != nil {
			return nil, err
		}
		for p.watch.gen() == 0 && !p.exited() && time.Now().Before(deadline) {
			sleep(ctx, 20*time.Millisecond)
		}
		if p.watch.gen() > 0 {
			f.mu.Lock()
			p.up = true
			dead := p.dead
			if !dead {
				f.run = append(f.run, p)
			}
			f.mu.Unlock()
			if dead {
				continue // exited right after listening: exited() reported it
			}
			return p, nil
		}
		if !p.exited() {
			f.kill(p)
			return nil, fmt.Errorf("%s did not listen within a minute; log %s", p, p.logPath)
		}
		<-p.done
		f.mu.Lock()
		f.startFailures++
		f.mu.Unlock()
		f.h.logf("%s failed to start (%s); trying again", p, f.howEnded(p))
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no bridge could start within a minute; last log %s", p.logPath)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (f *fleet) kill(p *bridgeProc) {
	p.signalled.Store(true)
	f.setHow(p, "killed (SIGKILL)")
	_ = p.cmd.Process.Kill()
	<-p.done
	f.mu.Lock()
	f.sigkills++
	f.mu.Unlock()
}

// stop sends SIGTERM and requires a clean exit within 15 s.
func (f *fleet) stop(p *bridgeProc, why string) {
	p.signalled.Store(true)
	f.setHow(p, "stopped (SIGTERM, "+why+")")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		// A clean stop on SIGTERM exits 143 (128+15), as shells expect.
		if exitErr := (*exec.ExitError)(nil); !errors.As(p.waitErr, &exitErr) || exitErr.ExitCode() != 143 {
			f.h.errs.add("%s exited with %s after SIGTERM (%s), want exit status 143; log %s", p, exitText(p.waitErr), why, p.logPath)
		} else {
			f.mu.Lock()
			p.graceful = true
			f.mu.Unlock()
		}
	case <-time.After(15 * time.Second):
		f.h.errs.add("%s did not exit within 15s of SIGTERM (%s); killed; log %s", p, why, p.logPath)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	f.mu.Lock()
	f.sigterms++
	f.mu.Unlock()
}

// killAll kills whatever still runs, when the test ends.
func (f *fleet) killAll() {
	f.mu.Lock()
	all := append([]*bridgeProc(nil), f.all...)
	f.mu.Unlock()
	for _, p := range all {
		if !p.exited() {
			p.signalled.Store(true)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func (f *fleet) runningProcs() []*bridgeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*bridgeProc(nil), f.run...)
}

// random returns a running bridge, or nil.
func (f *fleet) random() *bridgeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.run) == 0 {
		return nil
	}
	return f.run[f.rng.IntN(len(f.run))]
}

// scaleTo starts or gracefully stops bridges until n run. It returns the
// bridges it started.
func (f *fleet) scaleTo(ctx context.Context, n int) []*bridgeProc {
	var started []*bridgeProc
	for len(f.runningProcs()) < n {
		p, err := f.start(ctx)
		if err != nil {
			f.h.errs.add("scale to %d bridges: %v", n, err)
			return started
		}
		started = append(started, p)
	}
	for {
		run := f.runningProcs()
		if len(run) <= n {
			return started
		}
		f.stop(run[f.rng.IntN(len(run))], fmt.Sprintf("scale down to %d", n))
	}
}

// listenGens snapshots the listener generation of every running bridge.
func (f *fleet) listenGens() map[*bridgeProc]int {
	gens := map[*bridgeProc]int{}
	for _, p := range f.runningProcs() {
		gens[p] = p.watch.gen()
	}
	return gens
}

// waitRelistened waits until every bridge in before that still runs has
// listened again since the snapshot, and every running bridge listens.
func (f *fleet) waitRelistened(ctx context.Context, before map[*bridgeProc]int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var waiting []string
		for _, p := range f.runningProcs() {
			gen, listening := p.watch.state()
			if g0, ok := before[p]; (ok && gen <= g0) || !listening {
				waiting = append(waiting, p.String())
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening again %s after the fault", strings.Join(waiting, ", "), timeout)
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

func (f *fleet) logPaths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.all {
		how := p.how
		if !p.dead {
			how = "running"
		}
		out = append(out, fmt.Sprintf("  %s  [%s; %s]", p.logPath, p.args, how))
	}
	return out
}

func (f *fleet) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := 0
	for _, p := range f.all {
		p.watch.mu.Lock()
		errs += p.watch.errors
		p.watch.mu.Unlock()
	}
	return fmt.Sprintf("%d processes started (%d SIGKILLed, %d stopped by SIGTERM, %d start attempts failed while Postgres was away); %d ERROR log lines in all (expected during faults)",
		len(f.all), f.sigkills, f.sigterms, f.startFailures, errs)
}

// checkRegistry checks that every bridge stopped by SIGTERM removed its row
// from notified_bridge, as a graceful stop promises (killed ones stay). It
// returns the bridges that did not; they fail the test with
// -chaos.strict-registry.
func (h *harness) checkRegistry(ctx context.Context) []string {
	pids := map[int]bool{}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := h.ctl.Query(qctx, "SELECT pid FROM notified.notified_bridge")
	if err == nil {
		for rows.Next() {
			var pid int
			if err = rows.Scan(&pid); err != nil {
				break
			}
			pids[pid] = true
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		h.errs.add("read notified_bridge: %v", err)
		return nil
	}
	h.fleet.mu.Lock()
	defer h.fleet.mu.Unlock()
	var left []string
	for _, p := range h.fleet.all {
		if p.graceful && pids[p.cmd.Process.Pid] {
			msg := fmt.Sprintf("%s exited cleanly after SIGTERM but left its row in notified_bridge; log %s", p, p.logPath)
			left = append(left, msg)
			if *flagStrictRegistry {
				h.errs.add("%s", msg)
			} else {
				h.logf("known issue: %s", msg)
			}
		}
	}
	return left
}

// scanLogs fails the test on any panic, fatal error or data race a bridge
// printed.
func (h *harness) scanLogs() {
	h.fleet.mu.Lock()
	all := append([]*bridgeProc(nil), h.fleet.all...)
	h.fleet.mu.Unlock()
	for _, p := range all {
		p.watch.mu.Lock()
		crashes := append([]string(nil), p.watch.crashes...)
		p.watch.mu.Unlock()
		for _, c := range crashes {
			h.errs.add("%s printed %q; log %s", p, c, p.logPath)
		}
	}
}
