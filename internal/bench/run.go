package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/notified/notified/bridge"
)

// runner carries one run through its phases.
type runner struct {
	o    Options
	pool *pgxpool.Pool
	s    *scratch

	committed atomic.Int64 // events committed by producers in this phase
	// firstCommit is the database's clock read right after a burst's
	// first transaction committed.
	firstCommitMu sync.Mutex
	firstCommit   time.Time
	handled       atomic.Int64 // jobs handled by the workers
	bridges       []*bridge.Bridge
	// pass names the phase measured when a run measures two (unordered,
	// ordered); order is the handlers' check of the lanes (with
	// OrderedKeys).
	pass  string
	order *orderCheck
	// receiver is the webhook mode's endpoint, once started.
	receiver *receiver
}

// phase is the name progress reports for a step of the measured phase.
func (r *runner) phase(name string) string {
	if r.pass == "" {
		return name
	}
	return r.pass + ": " + name
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	o := r.o
	defer func() {
		if r.receiver != nil {
			r.receiver.stop()
		}
	}()
	res := &Result{Mode: o.Mode, Schema: o.Schema, Events: o.Events, Routes: o.Routes, Filters: o.Filters, Bridges: o.Bridges, CompleteTx: o.CompleteTx,
		BatchSize: o.BatchSize, Concurrency: o.Concurrency, Producers: o.Producers, Work: o.Work, Clock: "statement"}
	if o.Mode != Steady {
		res.EventsPerTx = o.EventsPerTx
	}
	if r.s.commit {
		res.Clock = "commit"
	}
	if o.Mode == Steady {
		res.Rate, res.Duration = o.Rate, o.Duration
		res.Events = int(float64(o.Rate) * o.Duration.Seconds())
	}
	if o.OrderedKeys > 0 {
		// Every handler of the run, the baseline's too, does the order
		// check's work.
		r.order = newOrderCheck(o.OrderedKeys)
	}
	if !o.NoProducerCost {
		pc, err := r.producerCost(ctx)
		if err != nil {
			return nil, err
		}
		res.ProducerCost = pc
	}
	if !o.NoBaseline {
		// A first round on a new river_job runs about a fifth slower
		// (catalog caches, the table's first extensions): it warms up,
		// unmeasured. Then one connection, and as many as the bridges'
		// dispatch transactions, each on an empty river_job.
		if _, err := r.baseline(ctx, "baseline: warming up", min(res.Events*o.Routes, warmUpJobs), 1); err != nil {
			return nil, err
		}
		if err := r.s.reset(ctx); err != nil {
			return nil, err
		}
		for _, conns := range []int{1, o.Bridges * o.Concurrency} {
			bl, err := r.baseline(ctx, fmt.Sprintf("baseline: River InsertManyFast on %d connection(s)", conns), res.Events*o.Routes, conns)
			if err != nil {
				return nil, err
			}
			if err := r.s.reset(ctx); err != nil {
				return nil, err
			}
			if conns == 1 {
				res.BaselineOneConnection = bl
			}
			res.Baseline = bl
		}
		if o.Work {
			h, err := r.handledBaseline(ctx, res.Events, o.Bridges*o.Concurrency)
			if err != nil {
				return nil, err
			}
			res.HandledBaseline = h
		}
	}
	if o.OrderedKeys > 0 {
		res.OrderedKeys, res.OrderedBy = o.OrderedKeys, orderedBy(o.OrderedKeys)
		r.newPhase()
		if o.Work && o.Mode != Steady {
			if err := r.measureUnordered(ctx, res); err != nil {
				return nil, err
			}
		}
		if err := r.s.orderRoutes(ctx, o, res.OrderedBy); err != nil {
			return nil, err
		}
		r.pass = "ordered"
	}
	if o.Webhook {
		if err := r.measureGoThenWebhooks(ctx, res); err != nil {
			return nil, err
		}
	}
	if err := r.measure(ctx, res); err != nil {
		return nil, err
	}
	if res.HandledGo != nil && res.HandledGo.JobsPerSec > 0 && res.Handled != nil {
		res.WebhookRatio = res.Handled.JobsPerSec / res.HandledGo.JobsPerSec
	}
	if res.HandledUnordered != nil && res.HandledUnordered.JobsPerSec > 0 && res.Handled != nil {
		res.OrderedRatio = res.Handled.JobsPerSec / res.HandledUnordered.JobsPerSec
	}
	// A steady run's rate is the producers'; only a burst or a drain
	// compares with River's.
	if res.Baseline != nil && res.Baseline.JobsPerSec > 0 && o.Mode != Steady {
		res.Ratio = res.Bridge.JobsPerSec / res.Baseline.JobsPerSec
	}
	if res.HandledBaseline != nil && res.HandledBaseline.JobsPerSec > 0 && res.Handled != nil && o.Mode != Steady {
		res.HandledRatio = res.Handled.JobsPerSec / res.HandledBaseline.JobsPerSec
	}
	if err := r.verify(ctx, res); err != nil {
		return res, err
	}
	if o.OrderedKeys > 0 {
		if err := r.verifyOrder(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// measure runs the bridges (and workers) in the mode asked for and fills
// in the bridge's figures.
func (r *runner) measure(ctx context.Context, res *Result) error {
	// The bridges, workers and producers run until stop; the figures are
	// read from the database once they have stopped.
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	if r.o.Work {
		w, err := r.startWorkers(runCtx)
		if err != nil {
			return err
		}
		defer w.stop(context.WithoutCancel(ctx))
	}
	if r.o.Mode == Steady {
		if err := r.s.stampEachJob(ctx); err != nil {
			return err
		}
	}
	rss := newRSSMeter()
	phase := r.produceLive
	if r.o.Mode == Catchup {
		phase = r.drainBacklog
	}
	start, err := phase(runCtx, &wg, rss, res.Events)
	if err != nil {
		return err
	}
	if r.o.Mode == Steady {
		if err := r.measureSteady(ctx, res); err != nil {
			return err
		}
	}
	if r.o.Work {
		if err := r.measureHandled(ctx, res, rss); err != nil {
			return err
		}
	}
	res.PeakRSSBytes = rss.peak()
	stop()
	wg.Wait()
	for _, b := range r.bridges {
		st := b.Stats()
		res.Batches += st.Batches
		res.SkippedClaims += st.Duplicates
	}
	return r.readThroughput(ctx, res, start)
}

// phaseStart is when a phase's throughput is measured from: SQL for a time
// (drainStartSQL or firstCommitSQL) and its arguments.
type phaseStart struct {
	sql  string
	args []any
}

// drainBacklog commits target events while no bridge runs, then starts the
// bridges, which stop when ctx is done, and waits until they have drained
// the backlog. It returns the drain's start: the database's clock as the
// bridges started.
func (r *runner) drainBacklog(ctx context.Context, wg *sync.WaitGroup, rss *rssMeter, target int) (phaseStart, error) {
	if err := r.bulk(ctx, r.o.Events, r.phase("catchup: committing")); err != nil {
		return phaseStart{}, err
	}
	var clock string
	if err := r.s.pool.QueryRow(ctx, clockSQL).Scan(&clock); err != nil {
		return phaseStart{}, fmt.Errorf("read the database's clock: %w", err)
	}
	rss.reset()
	if err := r.startBridges(ctx, wg); err != nil {
		return phaseStart{}, err
	}
	if err := r.wait(ctx, r.phase("catchup: draining"), target, rss); err != nil {
		return phaseStart{}, err
	}
	return phaseStart{sql: drainStartSQL, args: []any{clock}}, nil
}

// produceLive starts the bridges, then has the producers commit while the
// bridges run, in bulk (target events) or at a steady rate, and waits until
// every event committed is dispatched. The bridges and producers stop when
// ctx is done. It returns the phase's start: the first event's commit.
func (r *runner) produceLive(ctx context.Context, wg *sync.WaitGroup, rss *rssMeter, target int) (phaseStart, error) {
	rss.reset()
	if err := r.startBridges(ctx, wg); err != nil {
		return phaseStart{}, err
	}
	if err := r.waitListening(ctx); err != nil {
		return phaseStart{}, err
	}
	produce, want := func(ctx context.Context) error { return r.bulk(ctx, r.o.Events, "") }, target
	if r.o.Mode == Steady {
		produce, want = r.steady, -1 // all the producers commit
	}
	produced := make(chan error, 1)
	wg.Go(func() { produced <- produce(ctx) })
	if err := r.wait(ctx, r.phase(string(r.o.Mode)), want, rss, produced); err != nil {
		return phaseStart{}, err
	}
	if r.o.Mode == Burst && !r.s.commit {
		// The statement clock stamps an event when it is inserted, which
		// for a large transaction is long before its commit.
		r.firstCommitMu.Lock()
		defer r.firstCommitMu.Unlock()
		return phaseStart{sql: drainStartSQL, args: []any{r.firstCommit}}, nil
	}
	return phaseStart{sql: firstCommitSQL}, nil
}

// noteFirstCommit notes the database's clock right after one of a burst's
// transactions committed, when it is the first (where the server tracks
// commit timestamps, they say it).
func (r *runner) noteFirstCommit(ctx context.Context, pool *pgxpool.Pool) error {
	if r.o.Mode != Burst || r.s.commit {
		return nil
	}
	r.firstCommitMu.Lock()
	defer r.firstCommitMu.Unlock()
	if !r.firstCommit.IsZero() {
		return nil
	}
	if err := pool.QueryRow(ctx, clockNowSQL).Scan(&r.firstCommit); err != nil {
		return fmt.Errorf("read the database's clock after the first commit: %w", err)
	}
	return nil
}

// measureSteady counts the events the steady producers committed and
// measures their latency to their jobs.
func (r *runner) measureSteady(ctx context.Context, res *Result) error {
	res.Events = int(r.committed.Load())
	lat, err := r.latency(ctx)
	if err != nil {
		return err
	}
	res.Latency = lat
	return nil
}

// measureHandled waits for the workers to handle every job and, in steady
// mode, measures the latency to the first handler.
func (r *runner) measureHandled(ctx context.Context, res *Result, rss *rssMeter) error {
	if err := r.waitHandled(ctx, res.Events*r.o.Routes, rss); err != nil {
		return err
	}
	if r.o.Mode != Steady {
		return nil
	}
	lat, err := r.handledLatency(ctx)
	if err != nil {
		return err
	}
	res.HandledLatency = lat
	return nil
}

// readThroughput reads, by the database's clock, how long after from the
// bridges inserted their last job and, with Work, the workers completed
// theirs, and the jobs' args size.
func (r *runner) readThroughput(ctx context.Context, res *Result, from phaseStart) error {
	secs, err := r.secondsSince(ctx, bridgeSecondsSQL, from)
	if err != nil {
		return fmt.Errorf("read the bridge's time: %w", err)
	}
	res.Bridge = throughput(res.Events, r.o.Routes, secs)
	if r.o.Work {
		secs, err := r.secondsSince(ctx, handledSecondsSQL, from)
		if err != nil {
			return fmt.Errorf("read the workers' time: %w", err)
		}
		h := throughput(res.Events, r.o.Routes, secs)
		res.Handled = &h
	}
	if err := r.s.pool.QueryRow(ctx, r.s.sql(argsBytesSQL)).Scan(&res.ArgsBytes); err != nil {
		return fmt.Errorf("read the jobs' args size: %w", err)
	}
	return nil
}

// secondsSince returns the seconds q (bridgeSecondsSQL or
// handledSecondsSQL) reads from from.
func (r *runner) secondsSince(ctx context.Context, q string, from phaseStart) (float64, error) {
	var secs float64
	err := r.s.pool.QueryRow(ctx, r.s.sql(secondsSQL(q, from.sql)), from.args...).Scan(&secs)
	return secs, err
}

func throughput(events, routes int, secs float64) Throughput {
	t := Throughput{Events: events, Jobs: events * routes, Seconds: secs}
	if secs > 0 {
		t.EventsPerSec = float64(events) / secs
		t.JobsPerSec = float64(events*routes) / secs
	}
	return t
}

// startBridges starts o.Bridges bridges, each with a pool of its own as in
// separate processes; they stop when ctx is done, and wg waits for them.
func (r *runner) startBridges(ctx context.Context, wg *sync.WaitGroup) error {
	r.bridges = nil
	for range r.o.Bridges {
		pool, err := r.newPool(ctx, r.o.Concurrency+2, "bridge")
		if err != nil {
			return err
		}
		b, err := bridge.New(ctx, pool, bridge.Config{
			Schema: r.s.schema, Table: r.s.table, Channel: r.s.channel,
			BatchSize: r.o.BatchSize, Concurrency: r.o.Concurrency,
			Retention: bridge.KeepForever, Logger: r.o.Logger,
		})
		if err != nil {
			pool.Close()
			return err
		}
		r.bridges = append(r.bridges, b)
		wg.Go(func() {
			defer pool.Close()
			_ = b.Run(ctx)
		})
	}
	return nil
}

func (r *runner) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for _, b := range r.bridges {
		for !b.Listening() {
			if time.Now().After(deadline) {
				return errors.New("the bridges did not start listening within 15s")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

func (r *runner) dispatched() (events, jobs int64) {
	for _, b := range r.bridges {
		st := b.Stats()
		events += st.Dispatched
		jobs += st.Jobs
	}
	return events, jobs
}

// stallTimeout is how long the bench waits without progress before it
// gives up.
const stallTimeout = time.Minute

// wait waits until the bridges have dispatched target events (-1: all the
// producers committed, once produced reports), reporting progress. An error
// from produced ends the wait.
func (r *runner) wait(ctx context.Context, phase string, target int, rss *rssMeter, produced ...chan error) error {
	start := time.Now()
	lastProgress, lastCount := time.Now(), int64(-1)
	producing := len(produced) > 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if producing {
			select {
			case err := <-produced[0]:
				if err != nil {
					return err
				}
				producing = false
			default:
			}
		}
		events, jobs := r.dispatched()
		want := int64(target)
		if target < 0 {
			want = r.committed.Load()
		}
		rss.sample()
		r.progress(Progress{Phase: phase, Elapsed: time.Since(start), Target: int(want), Committed: r.committed.Load(),
			Dispatched: events, Jobs: jobs, Handled: r.handled.Load(), RSSBytes: rss.now})
		if !producing && events >= want {
			return nil
		}
		if events != lastCount {
			lastProgress, lastCount = time.Now(), events
		} else if !producing && time.Since(lastProgress) > stallTimeout {
			return fmt.Errorf("%s: the bridges dispatched %d of %d events and then nothing for %s", phase, events, want, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (r *runner) progress(p Progress) {
	if r.o.Progress != nil {
		r.o.Progress(p)
	}
}

// verify checks in the database that every event got exactly one job per
// route and no event got a duplicate.
func (r *runner) verify(ctx context.Context, res *Result) error {
	var events, dispatched, jobs, distinct int
	err := r.s.pool.QueryRow(ctx, r.s.sql(verifySQL)).Scan(&events, &dispatched, &jobs, &distinct)
	if err != nil {
		return fmt.Errorf("verify the jobs: %w", err)
	}
	want := res.Events * res.Routes
	switch {
	case events != res.Events || dispatched != res.Events:
		return fmt.Errorf("verify: %d events committed, %d recorded as dispatched, expected %d", events, dispatched, res.Events)
	case jobs != distinct:
		return fmt.Errorf("verify: %d jobs but only %d distinct (event, handler) pairs: duplicates", jobs, distinct)
	case jobs != want:
		return fmt.Errorf("verify: %d jobs for %d events × %d routes, expected %d", jobs, res.Events, res.Routes, want)
	}
	res.Verified = true
	return nil
}

// warmUpJobs is how many jobs the unmeasured first round of the baseline
// inserts.
const warmUpJobs = 20_000

// baseline, reporting progress as phase, inserts jobs jobs with the args and metadata the bridge gives
// them straight into River, 1,000 per transaction, from conns connections
// at once, and measures the rate by the database's clock. Its
// transactions commit without waiting for their WAL flush, as the
// bridge's dispatch transactions do.
func (r *runner) baseline(ctx context.Context, phase string, jobs, conns int) (*Baseline, error) {
	pool, err := r.newPool(ctx, conns, "baseline")
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	client, err := river.NewClient(riverDriver(pool), &river.Config{Schema: r.s.schema, Logger: r.o.Logger})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	var from string
	if err := pool.QueryRow(ctx, clockSQL).Scan(&from); err != nil {
		return nil, fmt.Errorf("read the database's clock: %w", err)
	}
	const perTx = 1000
	chunks := (jobs + perTx - 1) / perTx
	var next atomic.Int64
	var mu sync.Mutex // reports progress in order
	done := 0
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range conns {
		g.Go(func() error {
			params := make([]river.InsertManyParams, 0, perTx)
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return nil
				}
				params = params[:0]
				for j := c * perTx; j < min((c+1)*perTx, jobs); j++ {
					// Job j is event j/Routes+1's job for route j%Routes.
					params = append(params, baselineParams(j/r.o.Routes+1, j%r.o.Routes, r.s.channel))
				}
				if err := r.baselineTx(gctx, pool, client, params); err != nil {
					return err
				}
				mu.Lock()
				done += len(params)
				r.progress(Progress{Phase: phase, Elapsed: time.Since(t0), Target: jobs, Jobs: int64(done)})
				mu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	bl := &Baseline{Connections: conns, Jobs: jobs, from: from}
	if err := pool.QueryRow(ctx, r.s.sql(baselineSecondsSQL), from).Scan(&bl.Seconds); err != nil {
		return nil, fmt.Errorf("baseline: read its time: %w", err)
	}
	if bl.Seconds > 0 {
		bl.JobsPerSec = float64(jobs) / bl.Seconds
	}
	if err := pool.QueryRow(ctx, r.s.sql(argsBytesSQL)).Scan(&bl.ArgsBytes); err != nil {
		return nil, fmt.Errorf("baseline: read the args size: %w", err)
	}
	return bl, nil
}

// handledBaseline measures River's own workers completing the jobs of
// events, inserted straight into River on conns connections while the
// workers run, the same workers as the bridge's: from the first insert to
// the last completion.
func (r *runner) handledBaseline(ctx context.Context, events, conns int) (*Throughput, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.handled.Store(0)
	w, err := r.startWorkers(runCtx)
	if err != nil {
		return nil, err
	}
	stopWorkers := sync.OnceFunc(func() { w.stop(context.WithoutCancel(ctx)) })
	defer stopWorkers()
	jobs := events * r.o.Routes
	bl, err := r.baseline(ctx, "baseline: River workers", jobs, conns)
	if err != nil {
		return nil, err
	}
	if err := r.waitHandled(ctx, jobs, newRSSMeter()); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	secs, err := r.secondsSince(ctx, handledSecondsSQL, phaseStart{sql: drainStartSQL, args: []any{bl.from}})
	if err != nil {
		return nil, fmt.Errorf("baseline: read the workers' time: %w", err)
	}
	stopWorkers()
	r.handled.Store(0)
	if err := r.s.reset(ctx); err != nil {
		return nil, err
	}
	h := throughput(events, r.o.Routes, secs)
	return &h, nil
}

// baselineTx inserts one transaction of the baseline's jobs.
func (r *runner) baselineTx(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], params []river.InsertManyParams) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, asyncCommitSQL); err != nil {
			return err
		}
		if _, err := client.InsertManyFastTx(ctx, tx, params); err != nil {
			return fmt.Errorf("insert %d jobs: %w", len(params), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}
