package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/pgcluster"
)

var (
	flagDuration = flag.Duration("chaos.duration", 45*time.Second,
		"how long producers and faults run (the final drain and the checks come on top)")
	flagSeed = flag.Uint64("chaos.seed", 0,
		"seed of the producers' and the fault plan's random choices; 0 picks one from the clock (printed in the summary)")
	flagRaceBridge = flag.Bool("chaos.race-bridge", false,
		"build notified-bridge and the worker with -race; a data race either reports fails the test")
	flagKeepLogs = flag.Bool("chaos.keep-logs", false,
		"keep the bridges' and Postgres' logs when the test passes (they are always kept when it fails)")
	flagStrictRegistry = flag.Bool("chaos.strict-registry", true,
		"fail when a bridge stopped by SIGTERM leaves its row in notified_bridge (=false only reports it)")
)

// Where everything lives in the throwaway cluster.
const (
	schema  = "notified"   // River's and notified's tables
	table   = "app.events" // the events table
	channel = "events"     // the trigger's NOTIFY channel
)

// Event names. Producers use the first six; canaries use the last.
const (
	nameOne     = "one"     // one route
	nameThree   = "three"   // three routes, with different options
	nameNone    = "none"    // no route: unrouted
	nameAdded   = "added"   // no route until route_add, then one
	nameRemoved = "removed" // one route until route_remove, then none
	nameOrdered = "ordered" // one route, ordered by payload.key
	nameCanary  = "canary"  // the recovery probes
)

var (
	producerNames = []string{nameOne, nameThree, nameNone, nameAdded, nameRemoved, nameOrdered}
	allNames      = append(append([]string(nil), producerNames...), nameCanary)
	// producerDraw is what producers draw a name from: nameOrdered half as
	// often as the others. A lane runs about 4 to 6 jobs/s (River's
	// completer records completions every 250 ms when few are waiting), so
	// 16 lanes take 60 events/s or more; the ordered events come at about
	// 20/s, and the backlog of a burst (a bulk transaction of 5,000 rows
	// has about 400 of them) is gone in seconds.
	producerDraw = []string{nameOne, nameThree, nameNone, nameAdded, nameRemoved,
		nameOne, nameThree, nameNone, nameAdded, nameRemoved, nameOrdered}
)

// route is a row of notified_route, as notified_dispatch.jobs records it.
type route struct {
	Event       string `json:"-"`
	Kind        string `json:"kind"`
	Queue       string `json:"queue"`
	Priority    int    `json:"priority"`
	MaxAttempts int    `json:"max_attempts"`
	Where       string `json:"where"`   // the route's filter
	Skipped     string `json:"skipped"` // as recorded: why the filter made no job
	OrderedBy   string `json:"-"`       // the route's ordering key (notified_dispatch does not record it)
}

// evenIDs is the filter of a route of nameThree: its jobs are made for the
// events of even id only.
const evenIDs = "$.id % 2 == 0"

// laneKeyPath is the ordering key of the route of nameOrdered. Producers
// give most events of that name a key "k0" to "k<laneKeys-1>" there, and
// the others none: their jobs are not ordered.
const (
	laneKeyPath = "$.payload.key"
	laneKeys    = 16
)

// filterMatches says whether the filter of r matches event id.
func filterMatches(r route, id int64) bool { return r.Where == "" || id%2 == 0 }

// initialRoutes exist from the start; addedRoute is added by the route_add
// fault and removedRoute deleted by route_remove.
var (
	initialRoutes = []route{
		{nameOne, "one_a", "default", 1, 25, "", "", ""},
		{nameThree, "three_a", "default", 1, 25, "", "", ""},
		{nameThree, "three_b", "bulk", 2, 25, "", "", ""},
		{nameThree, "three_c", "default", 1, 5, evenIDs, "", ""},
		{nameRemoved, "removed_a", "default", 1, 25, "", "", ""},
		{nameCanary, "canary_a", "default", 4, 25, "", "", ""},
		{nameOrdered, "ordered_a", "default", 1, 25, "", "", laneKeyPath},
	}
	addedRoute   = route{nameAdded, "added_a", "default", 1, 25, "", "", ""}
	removedRoute = initialRoutes[4]
	orderedRoute = initialRoutes[6]
)

// TestChaos runs producers and faults for -chaos.duration against bridges
// running as subprocesses on a Postgres of its own, then checks that no
// event was lost or duplicated.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite runs real bridges under faults for about a minute: go test -short skips it")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	duration := *flagDuration
	if duration <= 0 {
		t.Fatalf("-chaos.duration %s must be positive", duration)
	}
	// The drain and the checks need a few minutes on top of the chaos.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < duration+4*time.Minute {
		t.Fatalf("-chaos.duration %s does not fit in the test binary's -timeout (%s left): pass -timeout %s or more",
			duration, time.Until(dl).Round(time.Second), (duration + 5*time.Minute).Round(time.Minute))
	}
	began := time.Now()

	ctx := context.Background()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{MaxConnections: 200})
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	require.NoError(t, err)

	logDir, err := os.MkdirTemp("", "notified-chaos-")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Runs last: the bridges are stopped by then.
		pgLog := filepath.Join(cluster.Dir(), "log")
		if t.Failed() || *flagKeepLogs {
			if b, err := os.ReadFile(pgLog); err == nil {
				_ = os.WriteFile(filepath.Join(logDir, "postgres.log"), b, 0o644)
			}
		}
		if err := cluster.Stop(context.Background()); err != nil {
			t.Logf("stop the throwaway cluster: %v", err)
		}
		if t.Failed() || *flagKeepLogs {
			t.Logf("logs kept in %s (bridge-NN.log per bridge process, worker-NN.log per worker process, postgres.log)", logDir)
		} else {
			_ = os.RemoveAll(logDir)
		}
	})

	h := &harness{
		t:       t,
		seed:    seed,
		url:     cluster.URL(),
		cluster: cluster,
		logDir:  logDir,
		errs:    &errorLog{},
		led:     newLedger(),
		faults:  newFaultStats(),
	}
	h.binary = buildBridge(t, *flagRaceBridge)
	h.ctl = newPool(t, h.url, "notified-chaos control", 8)
	h.prod = newPool(t, h.url, "notified-chaos producer", 12)
	h.fleet = newFleet(h)
	t.Cleanup(h.fleet.killAll) // before the cluster stops
	h.crew = newCrew(h, buildWorker(t, *flagRaceBridge))
	t.Cleanup(h.crew.killAll)

	h.setup(t)
	h.logf("seed %d, chaos for %s, logs in %s", seed, duration, logDir)

	// The chaos: one bridge and the workers to begin with, producers,
	// faults, progress.
	_, err = h.fleet.start(ctx)
	require.NoError(t, err, "start the first bridge")
	for range workersRunning {
		_, err = h.crew.start(ctx)
		require.NoError(t, err, "start a worker")
	}
	chaosStart := time.Now()
	prodCtx, stopProducers := context.WithCancel(ctx)
	var producers sync.WaitGroup
	h.startProducers(prodCtx, &producers)
	progressCtx, stopProgress := context.WithCancel(ctx)
	var progress sync.WaitGroup
	progress.Go(func() { h.reportProgress(progressCtx, chaosStart) })

	fr := newFaultRunner(h, chaosStart, duration)
	fr.run(ctx)
	sleep(ctx, 2*time.Second) // traffic after the last fault too
	stopProducers()
	producers.Wait()
	chaosTook := time.Since(chaosStart)

	// The end: exactly one bridge, a few hand-sent NOTIFYs it must record,
	// then everything dispatched.
	drainStart := time.Now()
	h.fleet.scaleTo(ctx, 1)
	h.endPhaseNotifies(ctx)
	drained := h.waitDrained(ctx, 2*time.Minute)
	// The ordered jobs run to the end, with a bridge running: its lane
	// waker advances the lanes River's transactions found locked.
	lanesStart := time.Now()
	h.lanesDone = h.waitLanesDone(ctx, 2*time.Minute)
	h.lanesTook = time.Since(lanesStart)
	stopProgress()
	progress.Wait()
	for _, p := range h.fleet.runningProcs() {
		h.fleet.stop(p, "end of run")
	}
	for _, p := range h.crew.runningProcs() {
		h.crew.stop(p, "end of run")
	}
	drainTook := time.Since(drainStart)

	// The verdict.
	res := h.check(ctx)
	res.seed = seed
	res.chaos = chaosTook
	res.drain = drainTook
	res.drained = drained
	res.total = time.Since(began)
	res.bridges = h.fleet.summary()
	res.workers = h.crew.summary()
	h.fleet.scanLogs()
	h.crew.scanLogs()
	res.registryLeft = h.checkRegistry(ctx)
	summary := res.summary(h)
	t.Log("\n" + summary)
	if testing.Verbose() {
		fmt.Print(summary)
	}
	for _, e := range h.errs.all() {
		t.Error(e)
	}
	if res.lost > 0 || res.duplicated > 0 || res.unexpected > 0 {
		t.Errorf("%d jobs lost, %d duplicated, %d unexpected", res.lost, res.duplicated, res.unexpected)
	}
	if res.ordered.verdict != "" && !res.ordered.ok {
		t.Errorf("ordered route: %s", res.ordered.verdict)
	}
	if t.Failed() {
		t.Logf("bridge logs:\n%s", strings.Join(h.fleet.logPaths(), "\n"))
		t.Logf("worker logs:\n%s", strings.Join(h.crew.logPaths(), "\n"))
	}
}

// harness is one chaos run: the cluster, the pools, the bridges, the ledger
// of what producers did and the faults injected.
type harness struct {
	t       *testing.T
	seed    uint64
	url     string
	cluster *pgcluster.Cluster
	binary  string
	logDir  string

	ctl  *pgxpool.Pool // faults, canaries, progress and checks
	prod *pgxpool.Pool // producers only: a table lock that blocks them does not starve the rest

	fleet *fleet
	crew  *crew // the worker processes

	lanesTook time.Duration // from the drain to every ordered job finalized
	lanesDone bool          // that happened in time
	led       *ledger
	faults    *faultStats
	errs      *errorLog
}

// rng returns a generator for one goroutine, derived from the run's seed.
func (h *harness) rng(stream string) *rand.Rand {
	var x uint64 = 14695981039346656037
	for _, c := range []byte(stream) {
		x = (x ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(h.seed, x))
}

// logf logs as the test runs (streamed with -v).
func (h *harness) logf(format string, args ...any) {
	h.t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// errorLog collects failures found by goroutines; the test reports them at
// the end, after the summary.
type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
}

func (l *errorLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// buildBridge builds the notified-bridge binary once, into a temporary
// directory, as a user would run it.
func buildBridge(t *testing.T, race bool) string {
	t.Helper()
	return buildProgram(t, "github.com/notified/notified/cmd/notified-bridge", race)
}

// buildProgram builds the main package pkg into a temporary directory, under
// the last element of its path, with the race detector if race.
func buildProgram(t *testing.T, pkg string, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	out, err := exec.Command("go", args...).CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return bin
}

func newPool(t *testing.T, url, app string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// cli runs the binary to completion, for set-up commands.
func (h *harness) cli(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.binary, append([]string{"--schema", schema}, args...)...)
	cmd.Env = bridgeEnv(h.url)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "notified-bridge %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// bridgeEnv is this process's environment without anything that configures
// the bridge, plus the database URL.
func bridgeEnv(url string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "NOTIFIED_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DATABASE_URL="+url)
}

// setup creates the events table, then migrates, installs the trigger and
// adds the routes with the binary, as an operator would.
func (h *harness) setup(t *testing.T) {
	ctx := context.Background()
	_, err := h.ctl.Exec(ctx, `CREATE SCHEMA app;
		CREATE TABLE app.events (id bigserial PRIMARY KEY, name text, payload jsonb);
		-- Every attempt of a job of the ordered route, as its handler in a
		-- worker process saw it (chaos/internal/chaosworker).
		CREATE TABLE app.lane_runs (
			id          bigserial PRIMARY KEY,
			job_id      bigint      NOT NULL,
			event_id    text        NOT NULL,
			lane        text,        -- the job's lane key (its metadata), NULL for none
			payload_key text,        -- the event's payload.key as JSON, NULL for none
			attempt     int         NOT NULL,
			pid         int         NOT NULL,
			started_at  timestamptz NOT NULL,
			finished_at timestamptz -- NULL: the worker died (or the database went away) first
		)`)
	require.NoError(t, err)
	args := []string{"setup", "--table", table, "--channel", channel}
	for _, r := range initialRoutes {
		args = append(args, "--route", r.Event+"="+r.Kind)
	}
	h.cli(t, args...)
	for _, r := range initialRoutes {
		if r.Queue != "default" || r.Priority != 1 || r.MaxAttempts != 25 || r.Where != "" || r.OrderedBy != "" {
			args := []string{"routes", "add", "--queue", r.Queue, "--priority", fmt.Sprint(r.Priority), "--max-attempts", fmt.Sprint(r.MaxAttempts)}
			if r.Where != "" {
				args = append(args, "--where", r.Where)
			}
			if r.OrderedBy != "" {
				args = append(args, "--ordered-by", r.OrderedBy)
			}
			h.cli(t, append(args, r.Event, r.Kind)...)
		}
	}
	var n int
	require.NoError(t, h.ctl.QueryRow(ctx, "SELECT count(*) FROM notified.notified_route").Scan(&n))
	require.Equal(t, len(initialRoutes), n, "routes after setup")
}

// endPhaseNotifies sends NOTIFYs for ids that have no row while exactly one
// bridge listens and nothing else happens: none may be recorded.
func (h *harness) endPhaseNotifies(ctx context.Context) {
	const n = 20
	if err := h.fleet.waitRelistened(ctx, nil, 30*time.Second); err != nil {
		h.errs.add("end phase: %v", err)
	}
	for i := range n {
		id := -int64(9_000_000_000) - int64(i)
		sent := time.Now()
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = h.ctl.Exec(cctx, "SELECT pg_notify($1, $2)", channel, fmt.Sprint(id))
			cancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			h.errs.add("end phase: hand-sent NOTIFY of %d failed: %v", id, err)
			continue
		}
		h.led.addNotify(notifyRec{id: id, payload: fmt.Sprint(id), kind: notifyEndPhase, sent: sent, ok: true})
	}
}

// waitDrained waits until the outbox is empty and every row of the events
// table is recorded in notified_dispatch (and checks that no end-phase
// NOTIFY of an id with no row was recorded),
// printing progress. It reports whether that happened before timeout.
func (h *harness) waitDrained(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	lastPrint := time.Time{}
	endIDs := h.led.endPhaseIDs()
	for {
		var outbox, undispatched, endRecorded int
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := h.ctl.QueryRow(qctx, `SELECT
			(SELECT count(*) FROM notified.notified_outbox),
			(SELECT count(*) FROM app.events e WHERE NOT EXISTS (
				SELECT 1 FROM notified.notified_dispatch d WHERE d.channel = $1 AND d.event_id = e.id::text)),
			(SELECT count(*) FROM unnest($2::text[]) AS p WHERE EXISTS (
				SELECT 1 FROM notified.notified_dispatch d WHERE d.channel = $1 AND d.event_id = p))`,
			channel, endIDs).Scan(&outbox, &undispatched, &endRecorded)
		cancel()
		if err == nil && outbox == 0 && undispatched == 0 {
			if endRecorded > 0 {
				h.errs.add("%d of %d end-phase NOTIFYs of ids with no row were recorded", endRecorded, len(endIDs))
			}
			h.logf("drained: outbox empty, every event recorded")
			return true
		}
		if time.Now().After(deadline) {
			h.errs.add("not drained %s after the chaos: %d outbox rows, %d events not recorded (last error: %v)",
				timeout, outbox, undispatched, err)
			return false
		}
		if time.Since(lastPrint) >= 5*time.Second {
			h.logf("draining: %d outbox rows, %d events not recorded yet (err %v)",
				outbox, undispatched, err)
			lastPrint = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reportProgress logs a line every 10 s with -v.
func (h *harness) reportProgress(ctx context.Context, start time.Time) {
	if !testing.Verbose() {
		return
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var outbox, recorded, ordered, lanes int
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := h.ctl.QueryRow(qctx, `SELECT (SELECT count(*) FROM notified.notified_outbox),
			(SELECT count(*) FROM notified.notified_dispatch),
			(SELECT count(*) FROM notified.river_job WHERE kind = $1 AND finalized_at IS NULL),
			(SELECT count(*) FROM notified.notified_lane)`, orderedRoute.Kind).Scan(&outbox, &recorded, &ordered, &lanes)
		cancel()
		state := fmt.Sprintf("outbox %d, recorded %d, %d ordered jobs open in %d lanes", outbox, recorded, ordered, lanes)
		if err != nil {
			state = "database: " + err.Error()
		}
		h.logf("t+%s: %d events committed, %s, %d bridges and %d workers running, faults %s",
			time.Since(start).Round(time.Second), h.led.committedCount(), state, len(h.fleet.runningProcs()),
			len(h.crew.runningProcs()), h.faults.countsText())
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// between returns a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
