// Package bridge turns committed events into River jobs, exactly once per
// event and handler.
//
// Producers keep their interface: a row goes into the events table and a
// NOTIFY carries its id. The capture trigger that notified-bridge installs
// also writes the id to an outbox table in the producer's own transaction.
// The bridge treats notifications only as a wake-up: it drains the outbox in
// batches, and for each batch one transaction claims the rows (FOR UPDATE
// SKIP LOCKED), fetches the events, records each event's outcome under a
// primary key that cannot be written twice, inserts one River job per route
// and commits. It drains on start, after every reconnect and every poll
// interval, so nothing committed while it was away is lost; several bridges
// share the outbox without duplicating work. See docs/design.md.
//
// A Go program runs a bridge with New and Run, given a Config written in
// code or read with ConfigFromEnv from the environment variables that
// `notified-bridge run` reads (EnvVars lists them), with the same defaults
// and checks. The handlers run in River workers, registered with package
// jobs: jobs.On registers a handler and declares its route in one call.
// Example (Embedded) runs the bridge and a worker in one program.
package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/migrations"
)

// Bridge listens for events and dispatches them. Create it with New and run
// it with Run.
type Bridge struct {
	id    string // this bridge's row in notified_bridge
	cfg   Config
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx]
	table atomic.Pointer[tableState] // the events table as last inspected
	q     queries
	log   *slog.Logger

	wake     chan struct{} // wakes the main drainer; capacity 1
	laneWake chan struct{} // wakes the lane waker (lanes.go); capacity 1
	helpers  chan struct{} // wakes helper drainers while a backlog lasts

	pendingMu sync.Mutex
	pending   []string // payloads notified and not taken by the drainer yet
	recent    *recentSet

	// Owned by the drainLoop goroutine: notified ids that had no row yet,
	// with when they were first tried, and the ignored notifications not
	// logged yet.
	unresolved      map[string]time.Time
	unresolvedTried time.Time
	ignoredSince    map[string]int
	ignoredExample  map[string]string
	ignoredLogged   time.Time

	problemMu sync.Mutex
	problem   string // what is wrong with the events table, if anything

	listening         atomic.Bool
	notificationsLost atomic.Bool  // the listener's probe notification never arrived
	lastCatchUp       atomic.Int64 // unix nanoseconds of the last complete drain
	ginCleaning       atomic.Bool  // the GIN cleaner works: dispatches leave flushing to it
	ginDirty          atomic.Bool  // jobs were inserted since the last flush
	metrics           *metrics

	// testHook, when set, runs between the steps of the dispatch transaction;
	// an error it returns aborts the transaction, as a crash would.
	testHook func(step string) error
	// signals tell tests what the bridge did; unset in production.
	signals testSignals
}

// New checks the configuration against the database (notified's tables are
// migrated, the events table and its columns exist) and returns a bridge that
// dispatches with connections from pool.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Bridge, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := migrations.Check(ctx, pool, cfg.Schema); err != nil {
		return nil, err
	}
	table, err := cfg.eventsTable().Inspect(ctx, pool)
	if err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Schema: cfg.Schema, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	b := &Bridge{
		id:       newBridgeID(),
		cfg:      cfg,
		pool:     pool,
		river:    client,
		q:        newQueries(cfg.Schema),
		log:      cfg.Logger.With(slog.String("channel", cfg.Channel)),
		wake:     make(chan struct{}, 1),
		laneWake: make(chan struct{}, 1),
		helpers:  make(chan struct{}, cfg.Concurrency),
		recent:   newRecentSet(max(1<<16, 4*cfg.BatchSize*cfg.Concurrency)),

		unresolved:     map[string]time.Time{},
		ignoredSince:   map[string]int{},
		ignoredExample: map[string]string{},
		metrics:        newMetrics(cfg.Channel),
	}
	b.table.Store(newTableState(cfg, table))
	b.metrics.tableOK.Set(1)
	return b, nil
}

// Listening reports whether the listener is connected and LISTENing.
func (b *Bridge) Listening() bool { return b.listening.Load() }

// Run listens and dispatches until ctx is done, then finishes the batches in
// flight and returns nil. It returns an error only when the bridge cannot
// start at all.
func (b *Bridge) Run(ctx context.Context) error {
	b.log.Info("bridge starting",
		slog.String("table", b.cfg.Table), slog.String("id_column", b.cfg.IDColumn),
		slog.String("name_column", b.cfg.NameColumn), slog.Duration("poll_interval", b.cfg.PollInterval),
		slog.Int("batch_size", b.cfg.BatchSize), slog.Int("concurrency", b.cfg.Concurrency),
		slog.Bool("poll_only", b.cfg.PollOnly), slog.String("retention", retentionText(b.cfg.Retention)))
	var wg sync.WaitGroup
	if !b.cfg.PollOnly {
		wg.Go(func() { b.listen(ctx) })
	}
	wg.Go(func() { b.drainLoop(ctx) })
	wg.Go(func() { b.housekeeping(ctx) })
	wg.Go(func() { b.ginCleaner(ctx) })
	wg.Go(func() { b.laneWaker(ctx) })
	for range b.cfg.Concurrency - 1 {
		wg.Go(func() { b.helperLoop(ctx) })
	}
	b.kick() // catch up on start
	wg.Wait()
	st := b.Stats()
	b.log.Info("bridge stopped", slog.Int64("events_dispatched", st.Dispatched), slog.Int64("jobs_inserted", st.Jobs))
	return nil
}

func retentionText(d time.Duration) string {
	if d == KeepForever {
		return "forever"
	}
	return d.String()
}
