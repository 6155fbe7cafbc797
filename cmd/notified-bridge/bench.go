package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bench"
	"github.com/notified/notified/internal/logging"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name: "bench",
		Usage: "measure the bridge on this database against River's own insert rate, in a scratch schema it creates and drops" +
			" (burst: events/s; steady: commit-to-job latency; catchup: a backlog's drain)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: string(bench.Burst), Usage: "burst, steady or catchup"},
			&cli.IntFlag{Name: "events", Value: 100_000, Usage: "events to commit (burst, catchup)"},
			&cli.IntFlag{Name: "routes", Value: 1, Usage: fmt.Sprintf("handlers per event, 1 to %d: each event becomes that many jobs", bench.MaxRoutes)},
			&cli.BoolFlag{Name: "filters", Usage: "give each route a filter (--where) that every event matches: the same jobs, plus the filters' cost"},
			&cli.IntFlag{Name: "rate", Value: 2000, Usage: "events/s over all producers (steady)"},
			&cli.IntFlag{Name: "events-per-tx", Usage: "events a burst or catch-up producer commits in one transaction (default 1000, at most --events)"},
			&cli.IntFlag{Name: "producers", Usage: "connections committing events (default 4 in steady mode, 1 otherwise; 4 for the producer cost)"},
			&cli.DurationFlag{Name: "duration", Value: 30 * time.Second, Usage: "how long the producers run (steady)"},
			&cli.BoolFlag{Name: "work", Usage: "also run River workers with a no-op handler per route, and measure events handled/s"},
			&cli.IntFlag{Name: "ordered-keys", Usage: "order every route by a key with this many values (user_id % N): each key's jobs run one at a time," +
				" in commit order; with --work (burst, catchup) the run measures the same workload unordered first, compares, and checks the order (0: unordered)"},
			&cli.BoolFlag{Name: "webhook", Usage: "with --work: measure webhook delivery: the run handles its jobs with Go handlers first, then makes the routes webhook routes" +
				" to a receiver in this process (loopback, 204), delivered signed by the built-in webhook handler, and compares"},
			&cli.BoolFlag{Name: "complete-tx", Usage: "with --work: each handler completes its job in a transaction of its own (jobs.CompleteTx), in every phase," +
				" instead of leaving it to River's completer"},
			&cli.IntFlag{Name: "bridges", Value: 1, Usage: "bridges running at once"},
			&cli.IntFlag{Name: "batch-size", Value: bridge.DefaultBatchSize, Usage: "each bridge's events per dispatch transaction"},
			&cli.IntFlag{Name: "concurrency", Value: bridge.DefaultConcurrency, Usage: "each bridge's dispatch transactions at once"},
			&cli.BoolFlag{Name: "no-baseline", Usage: "skip River's InsertManyFast baselines (one connection, and as many as the bridges' dispatch transactions)"},
			&cli.BoolFlag{Name: "no-producer-cost", Usage: "skip the capture trigger's cost to producers"},
			&cli.DurationFlag{Name: "producer-cost-time", Value: 6 * time.Second, Usage: "how long each trigger's single-row inserts run"},
			&cli.StringFlag{Name: "bench-schema", Usage: "name of the scratch schema, which must not exist (default notified_bench_ and random hex)"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the scratch schema afterwards, to look at with psql"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the run to this file (go tool pprof)"},
			&cli.StringFlag{Name: "memprofile", Usage: "write a heap profile at the end of the run to this file"},
			flagJSON(),
		},
		Action: withFields(benchFields, func(c *cli.Context) error {
			if _, err := positional(c, 0, "bench takes no arguments"); err != nil {
				return err
			}
			if c.String("schema") != "" {
				return errors.New("bench works in a scratch schema of its own: drop --schema / NOTIFIED_SCHEMA (name it with --bench-schema)")
			}
			o := bench.Options{
				Mode: bench.Mode(c.String("mode")), Events: c.Int("events"), Routes: c.Int("routes"), Filters: c.Bool("filters"),
				Rate: c.Int("rate"), Producers: c.Int("producers"), EventsPerTx: c.Int("events-per-tx"), Duration: c.Duration("duration"),
				Work: c.Bool("work"), OrderedKeys: c.Int("ordered-keys"), Webhook: c.Bool("webhook"), CompleteTx: c.Bool("complete-tx"), Bridges: c.Int("bridges"), BatchSize: c.Int("batch-size"),
				Concurrency: c.Int("concurrency"), NoBaseline: c.Bool("no-baseline"),
				NoProducerCost: c.Bool("no-producer-cost"), ProducerCostTime: c.Duration("producer-cost-time"),
				Schema: c.String("bench-schema"), Keep: c.Bool("keep"),
			}
			for _, f := range []string{"events", "events-per-tx", "routes", "rate", "producers", "bridges", "batch-size", "concurrency"} {
				if c.IsSet(f) && c.Int(f) < 1 {
					return fmt.Errorf("--%s %d must be at least 1", f, c.Int(f))
				}
			}
			if c.Int("ordered-keys") < 0 {
				return fmt.Errorf("--ordered-keys %d must be 0 (unordered) or more", c.Int("ordered-keys"))
			}
			for _, f := range []string{"duration", "producer-cost-time"} {
				if c.IsSet(f) && c.Duration(f) <= 0 {
					return fmt.Errorf("--%s %s must be positive", f, c.Duration(f))
				}
			}
			// The bridges log warnings and errors only, unless asked
			// otherwise: a line per batch would bury the progress.
			o.Logger = slog.Default()
			if !c.IsSet("log-level") {
				l, err := logging.New(c.App.ErrWriter, "warn", c.String("log-format"))
				if err != nil {
					return err
				}
				o.Logger = l
			}
			live := newBenchProgress(c.App.ErrWriter)
			o.Progress = live.update
			stopProfile, err := startProfiles(c.String("cpuprofile"), c.String("memprofile"))
			if err != nil {
				return err
			}
			pool, err := connect(c, 0)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := bench.Run(c.Context, pool, o)
			live.done()
			if perr := stopProfile(); perr != nil && err == nil {
				err = perr
			}
			if res == nil {
				if c.Context.Err() != nil && o.Keep {
					return errors.New("bench interrupted; its scratch schema was kept (--keep)")
				}
				if c.Context.Err() != nil {
					return errors.New("bench interrupted; its scratch schema was dropped")
				}
				return err
			}
			if c.Bool("json") {
				if perr := printJSON(c.App.Writer, res); perr != nil {
					return perr
				}
			} else {
				printBench(c.App.Writer, res)
			}
			return err
		}),
	}
}

// benchFields are the flags that set the fields the bench's errors name:
// its scratch schema is Schema to the library (--schema, the schema of
// other commands, is refused), and its bridges' settings read no variable.
var benchFields = map[string]string{
	"Schema":      "--bench-schema",
	"BatchSize":   "--batch-size",
	"Concurrency": "--concurrency",
}

// startProfiles starts a CPU profile and returns what stops it and writes
// the heap profile.
func startProfiles(cpu, mem string) (func() error, error) {
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		cpuFile = f
	}
	return func() error {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			if err := cpuFile.Close(); err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
		}
		if mem == "" {
			return nil
		}
		f, err := os.Create(mem)
		if err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		return nil
	}, nil
}

// benchProgress shows the bench's progress on a terminal, on one line
// rewritten a few times a second; elsewhere it shows nothing.
type benchProgress struct {
	w     io.Writer
	on    bool
	shown bool
	last  time.Time
}

func newBenchProgress(w io.Writer) *benchProgress {
	return &benchProgress{w: w, on: logging.IsTerminal(w)}
}

func (p *benchProgress) update(s bench.Progress) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	line := fmt.Sprintf("%s %s", s.Phase, s.Elapsed.Truncate(100*time.Millisecond))
	switch {
	case s.Committed > 0 || s.Dispatched > 0:
		line += fmt.Sprintf(": %d committed, %d dispatched, %d jobs", s.Committed, s.Dispatched, s.Jobs)
		if s.Handled > 0 {
			line += fmt.Sprintf(", %d handled", s.Handled)
		}
		if secs := s.Elapsed.Seconds(); secs > 0 && s.Dispatched > 0 {
			line += fmt.Sprintf(", %.0f events/s", float64(s.Dispatched)/secs)
		}
	case s.Jobs > 0:
		line += fmt.Sprintf(": %d of %d jobs", s.Jobs, s.Target)
	}
	if s.RSSBytes > 0 {
		line += fmt.Sprintf(", RSS %s", mib(s.RSSBytes))
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.shown = true
}

func (p *benchProgress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printBench prints a bench's figures.
func printBench(w io.Writer, r *bench.Result) {
	what := fmt.Sprintf("%d events", r.Events)
	if r.EventsPerTx > 0 {
		what = fmt.Sprintf("%d events in transactions of %d", r.Events, r.EventsPerTx)
	}
	if r.Mode == bench.Steady {
		what = fmt.Sprintf("%d producers at %d events/s for %s (%d events)", r.Producers, r.Rate, r.Duration, r.Events)
	}
	fmt.Fprintf(w, "notified bench: %s, %s, %d route(s)%s, %d bridge(s) (batch size %d, concurrency %d)%s\n",
		r.Mode, what, r.Routes, map[bool]string{true: " with filters"}[r.Filters], r.Bridges, r.BatchSize, r.Concurrency,
		map[bool]string{true: ", with workers"}[r.Work]+map[bool]string{true: " completing their jobs in their own transactions"}[r.CompleteTx])
	clock := "times from the database's clock at each insert"
	if r.Clock == "commit" {
		clock = "times from the database's commit timestamps"
	}
	fmt.Fprintf(w, "scratch schema %s; %s\n\n", r.Schema, clock)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	from := "first commit"
	if r.Mode == bench.Catchup {
		from = "bridge start"
	}
	fmt.Fprintf(tw, "bridge (%s to last job inserted)\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
		from, r.Bridge.EventsPerSec, r.Bridge.JobsPerSec, r.Bridge.Jobs, r.Bridge.Seconds)
	if b := r.BaselineOneConnection; b != nil {
		fmt.Fprintf(tw, "baseline (River InsertManyFast, 1,000 per tx, 1 connection)\t\t%.0f jobs/s\t%d jobs in %.2fs\n",
			b.JobsPerSec, b.Jobs, b.Seconds)
	}
	if b := r.Baseline; b != nil {
		fmt.Fprintf(tw, "baseline (River InsertManyFast, 1,000 per tx, %d connections)\t\t%.0f jobs/s\t%d jobs in %.2fs\n",
			b.Connections, b.JobsPerSec, b.Jobs, b.Seconds)
		if r.Ratio > 0 {
			fmt.Fprintf(tw, "bridge / baseline at equal concurrency\t\t%.2f\targs %d bytes (baseline %d)\n", r.Ratio, r.ArgsBytes, b.ArgsBytes)
		}
	}
	if r.Handled != nil {
		label := "handled (%s to last handler completed)"
		if r.Webhook {
			label = "webhooks delivered (%s to last delivery completed)"
		}
		fmt.Fprintf(tw, label+"\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
			from, r.Handled.EventsPerSec, r.Handled.JobsPerSec, r.Handled.Jobs, r.Handled.Seconds)
	}
	if h := r.HandledBaseline; h != nil {
		fmt.Fprintf(tw, "handled baseline (River's workers, jobs inserted on %d connections)\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
			r.Baseline.Connections, h.EventsPerSec, h.JobsPerSec, h.Jobs, h.Seconds)
		if r.HandledRatio > 0 {
			fmt.Fprintf(tw, "handled / handled baseline\t\t%.2f\n", r.HandledRatio)
		}
	}
	if b := r.BridgeUnordered; b != nil {
		fmt.Fprintf(tw, "bridge, same run unordered\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
			b.EventsPerSec, b.JobsPerSec, b.Jobs, b.Seconds)
	}
	if h := r.HandledUnordered; h != nil {
		fmt.Fprintf(tw, "handled, same run unordered\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
			h.EventsPerSec, h.JobsPerSec, h.Jobs, h.Seconds)
		if r.OrderedRatio > 0 {
			fmt.Fprintf(tw, "handled ordered / unordered\t\t%.2f\n", r.OrderedRatio)
		}
	}
	if h := r.HandledGo; h != nil {
		fmt.Fprintf(tw, "handled, same run by Go handlers\t%.0f events/s\t%.0f jobs/s\t%d jobs in %.2fs\n",
			h.EventsPerSec, h.JobsPerSec, h.Jobs, h.Seconds)
		if r.WebhookRatio > 0 {
			fmt.Fprintf(tw, "webhook deliveries / Go handlers\t\t%.2f\n", r.WebhookRatio)
		}
	}
	tw.Flush()
	printOrder(w, r)
	if l := r.Latency; l != nil {
		kept := "kept up"
		if !l.KeptUp {
			kept = "fell behind"
		}
		fmt.Fprintf(w, "\ncommit to jobs inserted: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms over %d events\n", l.P50, l.P90, l.P99, l.Max, l.Events)
		fmt.Fprintf(w, "producers reached %.0f events/s; the bridge %s (last jobs %.0f ms after the last commit)\n", l.Produced, kept, l.DrainedAfter)
	}
	if l := r.HandledLatency; l != nil {
		fmt.Fprintf(w, "commit to handler completed: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n", l.P50, l.P90, l.P99, l.Max)
	}
	if pc := r.ProducerCost; pc != nil {
		fmt.Fprintf(w, "\nproducer cost (%d connections, single-row inserts, %.1fs each): notify-only trigger %.0f rows/s, notified's trigger %.0f rows/s, ratio %.2f\n",
			pc.Producers, pc.SecondsEach, pc.NotifyOnly, pc.Notified, pc.Ratio)
	}
	fmt.Fprintf(w, "\n%d dispatch transactions (%.0f events each on average), %d claims skipped as already recorded\n",
		r.Batches, float64(r.Events)/max(float64(r.Batches), 1), r.SkippedClaims)
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "peak RSS of this process while the bridges ran: %s\n", mib(r.PeakRSSBytes))
	}
	if r.Verified {
		fmt.Fprintf(w, "verified: every event has exactly one job per route, no duplicates\n")
	}
}

// printOrder prints what a bench with ordered keys saw of its lanes.
func printOrder(w io.Writer, r *bench.Result) {
	o := r.Order
	if o == nil {
		return
	}
	fmt.Fprintf(w, "\nordered by %s: %d key(s) × %d route(s) = %d lanes; %d jobs went through a lane\n",
		r.OrderedBy, r.OrderedKeys, r.Routes, o.Lanes, o.LaneJobs)
	switch {
	case !r.Work:
		fmt.Fprintf(w, "order not checked: no handler ran (--work)\n")
	case r.OrderVerified && o.CommitOrderChecked:
		fmt.Fprintf(w, "order verified: %d starts checked, no two jobs of a lane ran at once, each lane's jobs started in commit order\n", o.Started)
	case r.OrderVerified:
		fmt.Fprintf(w, "order verified: %d starts checked, no two jobs of a lane ran at once; commit order not checked with %d producers\n",
			o.Started, r.Producers)
	default:
		fmt.Fprintf(w, "ORDER NOT VERIFIED: %d starts checked, %d while a job of their lane was running, %d out of commit order\n",
			o.Started, o.Overlaps, o.OutOfOrder)
	}
}
