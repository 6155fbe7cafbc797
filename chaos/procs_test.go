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

// Processes: the bridges (fleet) and the workers (crew) are subprocesses
// the test starts, kills and stops the same way; what is the same lives
// here, what differs (how each is started, what its log says, what a clean
// stop exits with) beside each.

// proc is one subprocess: its command, its log and how it ended. bridgeProc
// and workerProc embed it.
type proc struct {
	cmd     *exec.Cmd
	kind    string // set by launch from here on
	n       int
	logPath string
	done    chan struct{}
	waitErr error // once done is closed

	signalled atomic.Bool // we killed or stopped it

	// Guarded by the group's mutex.
	up   bool   // start saw it ready
	dead bool   // the process ended
	how  string // how it ended
}

func (p *proc) base() *proc { return p }

func (p *proc) String() string {
	return fmt.Sprintf("%s %d (pid %d)", p.kind, p.n, p.cmd.Process.Pid)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// member is a process type of a group: *bridgeProc or *workerProc.
type member interface {
	comparable
	fmt.Stringer
	base() *proc
	lines() *logLines
}

// procGroup starts, kills and stops processes of one kind, and notices the
// ones that exit on their own.
type procGroup[P member] struct {
	h    *harness
	kind string // "bridge" or "worker": names processes and log files
	// spawn makes the next process, its cmd set but not started, and the
	// watcher of its output.
	spawn func() (P, io.Writer)
	// readyVerb is what a process does once it is ready ("listen",
	// "start"), for the message when it does not.
	readyVerb string
	// isReady reports whether a process is ready: start waits for it.
	isReady func(P) bool
	// crashIfReady counts the end of a process that was ready as a crash
	// even before start saw it ready.
	crashIfReady bool

	mu  sync.Mutex
	rng *rand.Rand
	seq int
	all []P
	run []P // running and ready

	startFailures int
	sigkills      int
	sigterms      int
}

// launch starts the group's next process with its output to its log file
// and its watcher, and watches for its end.
func (g *procGroup[P]) launch() (P, error) {
	var none P
	g.mu.Lock()
	g.seq++
	n := g.seq
	g.mu.Unlock()
	p, watch := g.spawn()
	b := p.base()
	b.kind, b.n, b.done = g.kind, n, make(chan struct{})
	b.logPath = filepath.Join(g.h.logDir, fmt.Sprintf("%s-%02d.log", g.kind, n))
	file, err := os.Create(b.logPath)
	if err != nil {
		return none, err
	}
	b.cmd.Env = bridgeEnv(g.h.url)
	if *flagRaceBridge {
		b.cmd.Env = append(b.cmd.Env, "GORACE=halt_on_error=0")
	}
	out := io.MultiWriter(file, watch)
	b.cmd.Stdout, b.cmd.Stderr = out, out
	if err := b.cmd.Start(); err != nil {
		file.Close()
		return none, fmt.Errorf("start %s: %w", filepath.Base(b.cmd.Path), err)
	}
	g.mu.Lock()
	g.all = append(g.all, p)
	g.mu.Unlock()
	go func() {
		b.waitErr = b.cmd.Wait()
		file.Close()
		g.exited(p)
	}()
	return p, nil
}

// exited runs when a process ends.
func (g *procGroup[P]) exited(p P) {
	b := p.base()
	g.mu.Lock()
	g.run = slices.DeleteFunc(g.run, func(q P) bool { return q == p })
	b.dead = true
	switch {
	case b.signalled.Load():
	case b.up || (g.crashIfReady && g.isReady(p)):
		b.how = "exited on its own: " + exitText(b.waitErr)
		g.h.errs.add("%s exited on its own while running (%s); log %s", p, exitText(b.waitErr), b.logPath)
	default:
		b.how = "failed to start: " + exitText(b.waitErr)
	}
	g.mu.Unlock()
	close(b.done)
}

func (g *procGroup[P]) setHow(p P, how string) {
	g.mu.Lock()
	p.base().how = how
	g.mu.Unlock()
}

func (g *procGroup[P]) howEnded(p P) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return p.base().how
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

// exitCode is the exit status in err from cmd.Wait, or -1 when the process
// did not exit (a signal ended it) or could not be waited for.
func exitCode(err error) int {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		return exitErr.ExitCode()
	default:
		return -1
	}
}

// start launches a process and waits until it is ready, trying again (the
// database may be restarting) for up to a minute.
func (g *procGroup[P]) start(ctx context.Context) (P, error) {
	var none P
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := g.launch()
		if err != nil {
			return none, err
		}
		b := p.base()
		for !g.isReady(p) && !b.exited() && time.Now().Before(deadline) {
			sleep(ctx, 20*time.Millisecond)
		}
		if g.isReady(p) {
			g.mu.Lock()
			b.up = true
			dead := b.dead
			if !dead {
				g.run = append(g.run, p)
			}
			g.mu.Unlock()
			if dead {
				continue // exited right after it was ready: exited() reported it
			}
			return p, nil
		}
		if !b.exited() {
			g.kill(p)
			return none, fmt.Errorf("%s did not %s within a minute; log %s", p, g.readyVerb, b.logPath)
		}
		<-b.done
		g.mu.Lock()
		g.startFailures++
		g.mu.Unlock()
		g.h.logf("%s failed to start (%s); trying again", p, g.howEnded(p))
		if time.Now().After(deadline) {
			return none, fmt.Errorf("no %s could start within a minute; last log %s", b.kind, b.logPath)
		}
		sleep(ctx, 500*time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (g *procGroup[P]) kill(p P) {
	b := p.base()
	b.signalled.Store(true)
	g.setHow(p, "killed (SIGKILL)")
	_ = b.cmd.Process.Kill()
	<-b.done
	g.mu.Lock()
	g.sigkills++
	g.mu.Unlock()
}

// stopWith sends SIGTERM and requires an exit with status code, which
// messages call want, within 15 s. It reports whether the process did so.
func (g *procGroup[P]) stopWith(p P, why string, code int, want string) bool {
	b := p.base()
	b.signalled.Store(true)
	g.setHow(p, "stopped (SIGTERM, "+why+")")
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	clean := false
	select {
	case <-b.done:
		if exitCode(b.waitErr) != code {
			g.h.errs.add("%s exited with %s after SIGTERM (%s), want %s; log %s", p, exitText(b.waitErr), why, want, b.logPath)
		} else {
			clean = true
		}
	case <-time.After(15 * time.Second):
		g.h.errs.add("%s did not exit within 15s of SIGTERM (%s); killed; log %s", p, why, b.logPath)
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	g.mu.Lock()
	g.sigterms++
	g.mu.Unlock()
	return clean
}

// killAll kills whatever still runs, when the test ends.
func (g *procGroup[P]) killAll() {
	for _, p := range g.allProcs() {
		if b := p.base(); !b.exited() {
			b.signalled.Store(true)
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	}
}

func (g *procGroup[P]) allProcs() []P {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]P(nil), g.all...)
}

func (g *procGroup[P]) runningProcs() []P {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]P(nil), g.run...)
}

// logPaths lists every process's log file with what label, called with
// the group's mutex held, says of it.
func (g *procGroup[P]) logPaths(label func(P) string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, p := range g.all {
		out = append(out, fmt.Sprintf("  %s  [%s]", p.base().logPath, label(p)))
	}
	return out
}

// logErrors counts the ERROR lines all the processes logged.
func (g *procGroup[P]) logErrors() int {
	n := 0
	for _, p := range g.allProcs() {
		n += p.lines().errorCount()
	}
	return n
}

// scanLogs fails the test on any panic, fatal error or data race a process
// printed.
func (g *procGroup[P]) scanLogs() {
	for _, p := range g.allProcs() {
		for _, c := range p.lines().crashLines() {
			g.h.errs.add("%s printed %q; log %s", p, c, p.base().logPath)
		}
	}
}

// logLines splits a process's output into lines as it is written, counts
// the ERROR lines and keeps the lines that reveal a crash. The watchers of
// bridges and workers embed it; their own fields are guarded by its mutex.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	errors  int // level ERROR lines
	crashes []string
}

// feed takes output and hands each complete line to see, with the mutex
// held.
func (w *logLines) feed(p []byte, see func(line string)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		l := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		see(l)
		if strings.Contains(l, `"level":"ERROR"`) {
			w.errors++
		}
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.Contains(l, "WARNING: DATA RACE") {
			w.crashes = append(w.crashes, l)
		}
	}
}

func (w *logLines) errorCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errors
}

func (w *logLines) crashLines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.crashes...)
}
