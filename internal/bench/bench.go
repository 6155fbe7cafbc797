// Package bench measures notified on a database of the user's choosing: how
// fast the bridge turns committed events into River jobs, against River's own
// InsertManyFast rate for the same jobs in the same run; the latency from an
// event's commit to its jobs at a steady rate; how fast a backlog drains and
// in how much memory; what the capture trigger costs producers; and, with
// workers, how fast events are handled end to end.
//
// Everything happens in a scratch schema that Run creates (it refuses a
// schema that exists) and drops at the end, with a channel of its own, so a
// bridge already running on the database never sees the bench's events.
// Times are read from the database's clock: an event's insert time is its
// row's clock_timestamp(), and a job's is the end of the statement that
// inserted it, stamped by a trigger on the scratch schema's river_job.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/ident"
)

// Mode is what a run measures.
type Mode string

// The modes.
const (
	// Burst commits Events events in bulk while the bridges run, and
	// measures from the first commit to the last job inserted.
	Burst Mode = "burst"
	// Steady has Producers producers commit one event per transaction at
	// Rate events/s in all for Duration, and measures the latency from each
	// event's commit to its job's insert.
	Steady Mode = "steady"
	// Catchup commits Events events while no bridge runs, then starts the
	// bridges and measures the drain.
	Catchup Mode = "catchup"
)

// Limits of the options.
const (
	MaxRoutes  = 8
	MaxBridges = 16
)

// Options say what to measure. The zero value of a field means its default.
type Options struct {
	// Mode is burst, steady or catchup (default burst).
	Mode Mode
	// Events is how many events burst and catchup commit (default 100,000).
	Events int
	// Routes is how many routes (handlers) the events' name has, 1 to
	// MaxRoutes (default 1); each event becomes that many jobs.
	Routes int
	// Filters gives each route a filter (a jsonpath predicate on the row)
	// that every event of the bench matches: the jobs are the same, and
	// the difference is the cost of evaluating the filters.
	Filters bool
	// Rate is the steady mode's target, in events/s over all producers
	// (default 2,000).
	Rate int
	// Producers is how many connections commit events (default 4 in steady
	// mode, 1 otherwise) and measure the producer cost (default 4).
	Producers int
	// EventsPerTx is how many events a burst or catch-up producer commits
	// in one transaction (default 1,000; at most Events).
	EventsPerTx int
	// Duration is how long steady producers run (default 30s).
	Duration time.Duration
	// Work also runs River workers in this process, with a no-op handler
	// per route, and measures events handled per second.
	Work bool
	// OrderedKeys, when above 0, orders every route by a key with that
	// many values spread over the events (the event's user_id modulo
	// OrderedKeys): the jobs of one route and key run one at a time, in
	// the order their events were committed. With Work, in burst and
	// catchup modes, the run measures the same workload unordered first,
	// and the handlers check the order of every lane. 0: unordered.
	OrderedKeys int
	// Webhook, with Work, measures webhook delivery: the same run first
	// measures the routes' jobs handled by in-process Go handlers, then
	// the routes turned into webhook routes (one URL each) to a receiver
	// in this process on loopback, answering 204, delivered by the
	// built-in webhook handler, signed. Not with OrderedKeys.
	Webhook bool
	// CompleteTx, with Work, has each handler complete its job in a
	// transaction of its own (jobs.CompleteTx) instead of returning it to
	// River's completer, in every phase of the run: a handler that writes
	// to the database does so in that transaction.
	CompleteTx bool
	// Bridges is how many bridges run at once (default 1).
	Bridges int
	// BatchSize and Concurrency configure each bridge (default the
	// bridge's defaults).
	BatchSize   int
	Concurrency int
	// NoBaseline skips the River InsertManyFast baseline.
	NoBaseline bool
	// NoProducerCost skips the measurement of the capture trigger's cost to
	// producers.
	NoProducerCost bool
	// ProducerCostTime is how long each trigger's single-row inserts run
	// (default 6s, in six rounds of alternating triggers).
	ProducerCostTime time.Duration
	// Schema is the scratch schema's name (default notified_bench_ and
	// random hex). It must not exist.
	Schema string
	// Keep leaves the scratch schema in place afterwards.
	Keep bool
	// Progress, when set, is called about every 200ms while the bench runs.
	Progress func(Progress)
	// Logger receives the bridges' and workers' logs (default: discarded).
	Logger *slog.Logger

	costProducers int // connections measuring the producer cost
}

// Progress is a snapshot of a running bench.
type Progress struct {
	Phase     string        // what is being measured
	Elapsed   time.Duration // since the phase started
	Target    int           // events the phase waits for
	Committed int64         // events committed by the producers
	// Dispatched and Jobs are the bridges' counters; Handled counts
	// completed jobs (with Work).
	Dispatched int64
	Jobs       int64
	Handled    int64
	RSSBytes   int64 // of this process, now
}

// Result is what a run measured. Rates are per second of the database's
// clock.
type Result struct {
	Mode        Mode          `json:"mode"`
	Schema      string        `json:"schema"`
	Events      int           `json:"events"`
	Routes      int           `json:"routes"`
	Filters     bool          `json:"filters"`
	Bridges     int           `json:"bridges"`
	BatchSize   int           `json:"batch_size"`
	Concurrency int           `json:"concurrency"`
	Producers   int           `json:"producers"`
	EventsPerTx int           `json:"events_per_tx,omitempty"`
	Rate        int           `json:"rate,omitempty"`
	Duration    time.Duration `json:"duration_ns,omitempty"`
	Work        bool          `json:"work"`
	// ArgsBytes is the average size of a job's args, for the bridge's jobs.
	ArgsBytes int `json:"args_bytes"`

	// Bridge is the bridges' throughput: from the first event's commit
	// (catchup: from the bridges' start) to the last job inserted.
	Bridge Throughput `json:"bridge"`
	// Handled is the throughput to the last handler completed (with Work).
	Handled *Throughput `json:"handled,omitempty"`
	// Baseline is River's InsertManyFastTx of the same number of jobs with
	// the same args and metadata, 1,000 per transaction, on as many
	// connections at once as the bridges run dispatch transactions
	// (Bridges × Concurrency): the fair comparison.
	Baseline *Baseline `json:"baseline,omitempty"`
	// BaselineOneConnection is the same on one connection.
	BaselineOneConnection *Baseline `json:"baseline_one_connection,omitempty"`
	// Ratio is Bridge.JobsPerSec / Baseline.JobsPerSec, for burst and
	// catchup runs.
	Ratio float64 `json:"ratio,omitempty"`
	// HandledBaseline is, with Work, River's own workers completing the
	// same jobs inserted straight into River on as many connections as
	// Baseline: from the first insert to the last completion.
	HandledBaseline *Throughput `json:"handled_baseline,omitempty"`
	// HandledRatio is Handled.JobsPerSec / HandledBaseline.JobsPerSec, for
	// burst and catchup runs with Work.
	HandledRatio float64 `json:"handled_ratio,omitempty"`
	// OrderedKeys is Options.OrderedKeys, and OrderedBy the routes'
	// ordering key (a jsonpath) for it.
	OrderedKeys int    `json:"ordered_keys,omitempty"`
	OrderedBy   string `json:"ordered_by,omitempty"`
	// BridgeUnordered and HandledUnordered are, with OrderedKeys and Work
	// in burst and catchup modes, Bridge and Handled for the same run with
	// its routes unordered: the same events, bridges' settings and
	// workers, measured in this run before the ordered phase, on emptied
	// tables.
	BridgeUnordered  *Throughput `json:"bridge_unordered,omitempty"`
	HandledUnordered *Throughput `json:"handled_unordered,omitempty"`
	// OrderedRatio is Handled.JobsPerSec / HandledUnordered.JobsPerSec:
	// what ordering costs the handled throughput.
	OrderedRatio float64 `json:"ordered_ratio,omitempty"`
	// Order is what the handlers saw of the lanes (with OrderedKeys).
	Order *Order `json:"order,omitempty"`
	// Webhook says Handled is webhook deliveries to a local receiver (see
	// Options.Webhook); HandledGo is the same run's jobs handled by Go
	// handlers in the process, and WebhookRatio Handled / HandledGo.
	Webhook bool `json:"webhook,omitempty"`
	// CompleteTx says the handlers completed their jobs in their own
	// transactions (see Options.CompleteTx).
	CompleteTx   bool        `json:"complete_tx,omitempty"`
	HandledGo    *Throughput `json:"handled_go,omitempty"`
	WebhookRatio float64     `json:"webhook_ratio,omitempty"`
	// OrderVerified says, with OrderedKeys and Work, that every job went
	// through a lane and no two jobs of a lane ran at once; and, with one
	// producer, that each lane's jobs started in their events' commit
	// order.
	OrderVerified bool `json:"order_verified,omitempty"`
	// Latency is from an event's commit to its jobs' insert (steady mode).
	Latency *Latency `json:"latency,omitempty"`
	// HandledLatency is from an event's commit to its first handler's
	// completion (steady mode with Work).
	HandledLatency *Latency `json:"handled_latency,omitempty"`
	// ProducerCost compares single-row inserts with notified's capture
	// trigger to inserts with a notify-only trigger.
	ProducerCost *ProducerCost `json:"producer_cost,omitempty"`
	// PeakRSSBytes is the most memory this process (bridges, and workers
	// with Work) held while the bridges ran; 0 where it cannot be read.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// Batches is how many dispatch transactions the bridges committed, and
	// SkippedClaims how many outbox rows they claimed for events recorded
	// before (an id notified by hand as well as by the trigger, adopted
	// twice): work done for nothing.
	Batches       int64 `json:"batches"`
	SkippedClaims int64 `json:"skipped_claims"`
	// Verified says every event got exactly one job per route, with no
	// duplicate: checked in the database after the run.
	Verified bool `json:"verified"`
	// Clock says how times were read: "statement" (clock_timestamp() at
	// each insert) or "commit" (track_commit_timestamp is on).
	Clock string `json:"clock"`
}

// Throughput is a count of events and jobs over a time.
type Throughput struct {
	Events       int     `json:"events"`
	Jobs         int     `json:"jobs"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	JobsPerSec   float64 `json:"jobs_per_sec"`
}

// Baseline is River's insert rate for the same jobs.
type Baseline struct {
	// Connections is how many connections inserted at once.
	Connections int `json:"connections"`
	// from is the database\'s clock before the first insert.
	from       string
	Jobs       int     `json:"jobs"`
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobs_per_sec"`
	ArgsBytes  int     `json:"args_bytes"`
}

// Latency is a distribution of latencies in milliseconds.
type Latency struct {
	Events int     `json:"events"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
	// Produced is the rate the producers reached, events/s.
	Produced float64 `json:"produced_per_sec"`
	// KeptUp says the backlog never grew: every event's jobs were inserted
	// within a second of the last commit.
	KeptUp bool `json:"kept_up"`
	// DrainedAfter is how long after the last commit its jobs were
	// inserted, in milliseconds.
	DrainedAfter float64 `json:"drained_after_ms"`
}

// ProducerCost is the single-row insert rate of producers with each trigger.
type ProducerCost struct {
	Producers     int     `json:"producers"`
	NotifyOnly    float64 `json:"notify_only_per_sec"`
	Notified      float64 `json:"notified_per_sec"`
	Ratio         float64 `json:"ratio"`
	SecondsEach   float64 `json:"seconds_each"`
	NotifyOnlyRow int     `json:"notify_only_rows"`
	NotifiedRows  int     `json:"notified_rows"`
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = Burst
	}
	if o.Events == 0 {
		o.Events = 100_000
	}
	if o.Routes == 0 {
		o.Routes = 1
	}
	if o.Rate == 0 {
		o.Rate = 2000
	}
	// The producer cost is measured with several connections, as
	// applications commit, unless the producers are set.
	o.costProducers = o.Producers
	if o.Producers == 0 {
		o.costProducers = 4
		o.Producers = 1
		if o.Mode == Steady {
			o.Producers = 4
		}
	}
	if o.EventsPerTx == 0 {
		o.EventsPerTx = min(1000, max(o.Events, 1))
	}
	if o.Duration == 0 {
		o.Duration = 30 * time.Second
	}
	if o.Bridges == 0 {
		o.Bridges = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = bridge.DefaultBatchSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = bridge.DefaultConcurrency
	}
	if o.ProducerCostTime == 0 {
		o.ProducerCostTime = 6 * time.Second
	}
	if o.Schema == "" {
		o.Schema = ident.RandomName("notified_bench_")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch o.Mode {
	case Burst, Steady, Catchup:
	default:
		return fmt.Errorf("mode %q is not one of burst, steady, catchup", o.Mode)
	}
	switch {
	case o.Events < 1:
		return fmt.Errorf("events %d must be at least 1", o.Events)
	case o.Routes < 1 || o.Routes > MaxRoutes:
		return fmt.Errorf("routes %d must be 1 to %d", o.Routes, MaxRoutes)
	case o.Rate < 1:
		return fmt.Errorf("rate %d must be at least 1 event/s", o.Rate)
	case o.Producers < 1 || o.Producers > 64:
		return fmt.Errorf("producers %d must be 1 to 64", o.Producers)
	case o.EventsPerTx < 1 || o.EventsPerTx > o.Events:
		return fmt.Errorf("events per transaction %d must be 1 to the events (%d)", o.EventsPerTx, o.Events)
	case o.Duration < time.Second:
		return fmt.Errorf("duration %s must be at least 1s", o.Duration)
	case o.Bridges < 1 || o.Bridges > MaxBridges:
		return fmt.Errorf("bridges %d must be 1 to %d", o.Bridges, MaxBridges)
	case o.BatchSize < 1:
		return fmt.Errorf("batch size %d must be at least 1", o.BatchSize)
	case o.Concurrency < 1:
		return fmt.Errorf("concurrency %d must be at least 1", o.Concurrency)
	case o.OrderedKeys < 0:
		return fmt.Errorf("ordered keys %d must be 0 (unordered) or more", o.OrderedKeys)
	case o.CompleteTx && !o.Work:
		return errors.New("complete-tx is how the handlers complete their jobs: it needs work (workers in this process)")
	case o.CompleteTx && o.Webhook:
		return errors.New("complete-tx and webhook measure one thing at a time: give one of them")
	case o.Webhook && !o.Work:
		return errors.New("webhook measures deliveries: it needs work (workers in this process)")
	case o.Webhook && o.OrderedKeys > 0:
		return errors.New("webhook and ordered keys measure one thing at a time: give one of them")
	case o.Webhook && o.Mode == Steady:
		return errors.New("webhook measures a burst or a catch-up, not the steady mode")
	case o.ProducerCostTime < 0:
		return fmt.Errorf("producer cost time %s must be positive", o.ProducerCostTime)
	}
	return nil
}

// ErrSchemaExists is returned when the scratch schema exists already: the
// bench never works among existing tables.
var ErrSchemaExists = errors.New("schema exists")

// Run measures what o asks for on the database of pool and returns the
// figures. It creates the scratch schema, and drops it at the end (unless
// o.Keep), also when ctx is cancelled.
func Run(ctx context.Context, pool *pgxpool.Pool, o Options) (res *Result, err error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	s, err := createScratch(ctx, pool, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.Keep {
			return
		}
		if derr := s.drop(context.WithoutCancel(ctx)); derr != nil && err == nil {
			err = derr
		}
	}()
	r := &runner{o: o, pool: pool, s: s}
	return r.run(ctx)
}
