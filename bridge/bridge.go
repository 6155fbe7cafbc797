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
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/internal/termsafe"
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

	wake    chan struct{} // wakes the main drainer; capacity 1
	helpers chan struct{} // wakes helper drainers while a backlog lasts

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
		id:      newBridgeID(),
		cfg:     cfg,
		pool:    pool,
		river:   client,
		q:       newQueries(cfg.Schema),
		log:     cfg.Logger.With(slog.String("channel", cfg.Channel)),
		wake:    make(chan struct{}, 1),
		helpers: make(chan struct{}, cfg.Concurrency),
		recent:  newRecentSet(max(1<<16, 4*cfg.BatchSize*cfg.Concurrency)),

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

// kick wakes the main drainer without blocking.
func (b *Bridge) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// drainLoop is the main drainer: it drains on every wake-up and every poll
// interval.
func (b *Bridge) drainLoop(ctx context.Context) {
	ticker := time.NewTicker(b.cfg.PollInterval)
	defer ticker.Stop()
	failures := 0
	var waiting []waitingPayload // notified payloads to look up once outboxDelay has passed, oldest first
	for {
		select {
		case <-ctx.Done():
			b.addToOutboxOnStop(ctx, waiting)
			return
		case <-b.wake:
		case <-ticker.C:
		}
		// Drain first. The ids notified before the drain began had
		// committed, so the drain dispatched every one with an outbox row
		// that no other bridge held; those this bridge recorded are
		// dropped without a query. The others wait until another bridge's
		// dispatch of them has committed (outboxDelay), and are then put
		// in the outbox unless recorded: doing it at once would put a
		// second outbox row for each id another bridge is dispatching. Ids
		// notified during the drain wait for the next round.
		//
		// After a failure, try again once the backoff has passed rather
		// than at the next wake-up: the work is still there.
		notified := b.takePending()
		if err := b.drain(ctx); err != nil {
			b.putBackPending(notified)
			b.logFailure(ctx, msgDispatchFailed, err, &failures)
			b.kick()
			continue
		}
		now := time.Now()
		var due []string
		for len(waiting) > 0 && now.Sub(waiting[0].at) >= outboxDelay {
			due = append(due, waiting[0].payload)
			waiting = waiting[1:]
		}
		fresh := b.recent.without(notified)
		for _, p := range fresh {
			waiting = append(waiting, waitingPayload{p, now})
		}
		if len(waiting) > 0 {
			time.AfterFunc(outboxDelay-now.Sub(waiting[0].at), b.kick)
		}
		added, err := b.addToOutbox(ctx, due)
		if err != nil {
			b.logFailure(ctx, msgAddToOutboxFailed, err, &failures)
			b.kick()
			continue
		}
		if added > 0 {
			if err := b.drain(ctx); err != nil {
				b.logFailure(ctx, msgDispatchFailed, err, &failures)
				b.kick()
				continue
			}
		}
		b.caughtUp(time.Now())
		failures = 0
		b.signals.drained.send(drainRound{notifications: len(notified) - len(fresh) + len(due), addedToOutbox: added})
	}
}

// addToOutboxOnStop puts in the outbox, as the bridge stops, the notified
// ids still waiting, so that a hand-sent NOTIFY received before the stop is
// there for the next bridge.
func (b *Bridge) addToOutboxOnStop(ctx context.Context, waiting []waitingPayload) {
	pending := make([]string, 0, len(waiting))
	for _, n := range waiting {
		pending = append(pending, n.payload)
	}
	pending = append(pending, b.takePending()...)
	if _, err := b.addToOutbox(ctx, pending); err != nil {
		b.log.Warn("could not put the last notified ids in the outbox before stopping; ids notified by hand with no outbox row may be lost",
			slog.Int("ids", len(pending)), slog.String("error", err.Error()))
	}
}

// outboxDelay is how long after a drain the notified ids it did not
// dispatch wait before they are put in the outbox: long enough for another
// bridge's dispatch transaction to commit. It is also the latency of a
// hand-sent NOTIFY for an id with no outbox row.
const outboxDelay = 250 * time.Millisecond

// waitingPayload is a notified payload waiting for outboxDelay to pass.
type waitingPayload struct {
	payload string
	at      time.Time // when the drain after its notification ended
}

// helperLoop drains alongside the main drainer while batches come back full.
func (b *Bridge) helperLoop(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.helpers:
		}
		if err := b.drain(ctx); err != nil {
			b.logFailure(ctx, msgDispatchFailed, err, &failures)
			continue
		}
		failures = 0
	}
}

// Log messages that operators alert on; each is a constant, with the
// details as attributes.
const (
	msgDispatchFailed = "dispatch failed; retrying"
	// msgAddToOutboxFailed keeps the word the documentation uses for
	// putting notified ids in the outbox.
	msgAddToOutboxFailed = "adopt notified ids failed; retrying"
	msgEventRejected     = "event rejected"
	msgEventMissing      = "event missing"
)

// logFailure logs err under msg and waits a backoff that grows with
// consecutive failures, so that an unreachable database costs one line per
// interval, not a tight loop.
func (b *Bridge) logFailure(ctx context.Context, msg string, err error, failures *int) {
	if ctx.Err() != nil {
		return
	}
	*failures++
	delay := backoff(*failures, b.cfg.PollInterval)
	// A problem with the events table was logged once when it was found,
	// and Ready reports it until it is fixed.
	if !errors.Is(err, errTableUnusable) {
		b.metrics.errors.Inc()
		b.log.Error(msg, slog.String("error", err.Error()), slog.Duration("retry_in", delay))
	}
	sleep(ctx, delay)
}

// drain dispatches batches until one comes back short. While batches are
// full it wakes helpers, so a backlog is drained by several transactions at
// once.
func (b *Bridge) drain(ctx context.Context) error {
	for ctx.Err() == nil {
		res, err := b.runBatch(ctx, selection{})
		if errors.Is(err, errTableChanged) {
			continue // inspected again: retry with the table as it is now
		}
		if err != nil {
			seqs, ok := rowFault(err)
			if !ok {
				return err
			}
			// One of the batch's events cannot become a job: find it, so
			// that it does not hold up the others.
			if err := b.isolate(ctx, seqs, err); err != nil {
				return err
			}
			continue
		}
		// A short batch ends the drain, unless rows past its byte budget
		// went back to the outbox.
		if res.claimed < b.cfg.BatchSize && res.deferred == 0 {
			return nil
		}
		select {
		case b.helpers <- struct{}{}:
		default:
		}
	}
	return nil
}

// runBatch runs one dispatch transaction and accounts for it. The
// transaction runs to its end even when shutdown starts: it either commits
// or rolls back, never stops half-way. The server's statement timeout
// (BatchTimeout) ends a slow statement; the context's deadline, longer
// than the transaction's statements can take together, is for a server that
// stopped answering.
func (b *Bridge) runBatch(ctx context.Context, sel selection) (*batchResult, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchDeadline*b.cfg.BatchTimeout)
	defer cancel()
	res, err := b.dispatchBatch(bctx, sel)
	if err != nil {
		return nil, err
	}
	b.afterCommit(res)
	return res, nil
}

// batchDeadline times BatchTimeout is how long a dispatch transaction may
// take in all: a few statements (claim, fetch, record, insert), each of
// which may take up to BatchTimeout.
const batchDeadline = 5

// afterCommit logs a committed batch and records it in the metrics,
// and schedules the retry of the ids it requeued.
func (b *Bridge) afterCommit(res *batchResult) {
	if res.claimed == 0 {
		return
	}
	var dispatched, unrouted, missing, rejected int64
	keys := make([]string, 0, len(res.recorded))
	unroutedNames := map[string]int{}
	debug := b.log.Enabled(context.Background(), slog.LevelDebug)
	for _, r := range res.recorded {
		if r.outcome != OutcomeMissing { // a missing id may be notified again once its row exists
			keys = append(keys, r.key)
		}
		switch r.outcome {
		case OutcomeMissing:
			missing++
			b.log.Warn(msgEventMissing, slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case OutcomeRejected:
			rejected++
			b.log.Warn(msgEventRejected, slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case OutcomeUnrouted:
			unrouted++
			unroutedNames[*r.name]++
			b.log.Debug("event unrouted", slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case OutcomeDispatched:
			dispatched++
			if debug {
				kinds := make([]string, len(r.jobs))
				for i, route := range r.jobs {
					kinds[i] = route.Kind
				}
				b.log.Debug("event dispatched", slog.String("event_id", r.key), slog.String("event_name", *r.name),
					slog.Any("handlers", kinds), slog.Duration("lag", r.age))
			}
		}
	}
	// Unrouted events are often many of a few names: one line per name.
	for name, n := range unroutedNames {
		b.log.Info("events unrouted: no route for their name", slog.String("event_name", name), slog.Int("events", n))
	}
	b.recent.add(keys)
	if res.jobs > 0 {
		b.ginDirty.Store(true)
	}
	if res.requeued > 0 {
		// Try the ids whose rows were not visible again when they are due,
		// not only at the next poll.
		time.AfterFunc(b.retryDelay(), b.kick)
	}
	b.observe(res)
	level := slog.LevelInfo
	if len(res.recorded) == 0 {
		level = slog.LevelDebug // only requeued or duplicate claims
	}
	var attrs []any
	for _, st := range res.steps {
		attrs = append(attrs, slog.Duration(st.name, st.d))
	}
	b.log.Log(context.Background(), level, "batch dispatched", slog.Group("took", attrs...), slog.Int("claimed", res.claimed), slog.Int64("dispatched", dispatched),
		slog.Int("jobs", res.jobs), slog.Int64("unrouted", unrouted), slog.Int64("missing", missing),
		slog.Int64("rejected", rejected), slog.Int("requeued", res.requeued), slog.Int("deferred", res.deferred), slog.Int("duplicates", res.dupes))
	b.signals.committed.send(len(res.recorded))
}

// notified queues a notification's payload for the drainer and wakes it.
func (b *Bridge) notified(payload string) {
	b.metrics.notifications.Inc()
	b.pendingMu.Lock()
	b.pending = append(b.pending, payload)
	b.pendingMu.Unlock()
	b.kick()
}

// decodePending sorts notified payloads into the ids to look up, leaving
// out repeats and the ids this bridge has recorded recently, and counts the
// payloads that are not ids of the events table.
func (b *Bridge) decodePending(pending []string) (ids []string, notIDs int, example string) {
	seen := make(map[string]bool, len(pending))
	t := b.table.Load().t
	for _, p := range pending {
		id, err := t.ParseID(p)
		if err != nil {
			if notIDs == 0 {
				example = err.Error()
			}
			notIDs++
			continue
		}
		if seen[id] || b.recent.has(id) {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, notIDs, example
}

// takePending returns the payloads notified since the last call.
func (b *Bridge) takePending() []string {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	pending := b.pending
	b.pending = nil
	return pending
}

// putBackPending returns payloads that could not be handled, to be tried
// again.
func (b *Bridge) putBackPending(pending []string) {
	if len(pending) == 0 {
		return
	}
	b.pendingMu.Lock()
	b.pending = append(pending, b.pending...)
	b.pendingMu.Unlock()
}

// addToOutbox makes sure every notified id is dispatched even when no
// trigger wrote it to the outbox (a hand-sent NOTIFY). Ids this bridge has
// just recorded are skipped without a query; the rest are put in the outbox
// when the events table has their row and they are not recorded yet.
//
// Any role that can connect can NOTIFY any payload, so what a notification
// carries is never written to notified's tables unless it names a row:
// payloads that are not ids are counted and logged, not recorded; ids with
// no row are tried again until MissingGrace has passed (a NOTIFY sent from
// another connection may arrive before its row commits), at most
// maxUnresolved of them at a time, then counted and logged. It returns how
// many ids it put in the outbox.
func (b *Bridge) addToOutbox(ctx context.Context, pending []string) (int, error) {
	now := time.Now()
	ids, notIDs, example := b.decodePending(pending)
	if notIDs > 0 {
		b.ignore(ignoredNotAnID, notIDs, example)
	}
	// Ids that had no row are tried again with the new ones.
	if len(b.unresolved) > 0 && now.Sub(b.unresolvedTried) >= b.retryDelay() {
		b.unresolvedTried = now
		for id := range b.unresolved {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	added := 0
	for start := 0; start < len(ids); start += b.cfg.BatchSize {
		chunk := ids[start:min(start+b.cfg.BatchSize, len(ids))]
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.BatchTimeout)
		var n int64
		var noRow []string
		err := b.pool.QueryRow(bctx, b.table.Load().adopt, b.cfg.Channel, chunk).Scan(&n, &noRow)
		cancel()
		if err != nil {
			b.putBackPending(ids[start:])
			return added, fmt.Errorf("put %d notified ids in the outbox: %w", len(chunk), err)
		}
		added += int(n)
		missing := make(map[string]bool, len(noRow))
		for _, id := range noRow {
			missing[id] = true
		}
		for _, id := range chunk {
			first, waiting := b.unresolved[id]
			switch {
			case !missing[id]:
				delete(b.unresolved, id)
			case !waiting && len(b.unresolved) >= maxUnresolved:
				b.ignore(ignoredTooMany, 1, "")
			case !waiting:
				b.unresolved[id] = now
			case now.Sub(first) >= b.cfg.MissingGrace:
				delete(b.unresolved, id)
				b.ignore(ignoredNoRow, 1, id)
			}
		}
	}
	b.metrics.waiting.Set(float64(len(b.unresolved)))
	if len(b.unresolved) > 0 {
		time.AfterFunc(b.retryDelay(), b.kick)
	}
	return added, nil
}

// maxUnresolved bounds the notified ids with no row that wait for their row
// in memory.
const maxUnresolved = 10000

// Why a notification was ignored, as the notified_notifications_ignored_total
// metric labels it.
const (
	ignoredNotAnID = "not_an_id"
	ignoredNoRow   = "no_row"
	ignoredTooMany = "too_many_waiting"
)

// ignore counts notifications that name no event, and logs them at most
// once per ignoredLogInterval, with an example.
func (b *Bridge) ignore(reason string, n int, example string) {
	b.metrics.ignored.WithLabelValues(reason).Add(float64(n))
	b.ignoredSince[reason] += n
	if b.ignoredExample[reason] == "" {
		b.ignoredExample[reason] = example
	}
	if time.Since(b.ignoredLogged) >= ignoredLogInterval {
		b.ignoredLogged = time.Now()
		for r, count := range b.ignoredSince {
			b.log.Warn("notifications ignored: they name no event of the events table",
				slog.String("reason", r), slog.Int("notifications", count), slog.String("example", termsafe.QuoteShort(b.ignoredExample[r])),
				slog.Duration("since", ignoredLogInterval))
			delete(b.ignoredSince, r)
			delete(b.ignoredExample, r)
		}
	}
	b.signals.ignored.send(ignoredNotifications{reason, n})
}

// ignoredLogInterval is the least time between two logs of ignored
// notifications.
const ignoredLogInterval = 10 * time.Second

// listen keeps one connection LISTENing on the channel, reconnecting with a
// short backoff, and wakes the drainer on every notification and after every
// (re)connect.
func (b *Bridge) listen(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, func() { failures = 0 })
		if ctx.Err() != nil {
			return
		}
		failures++
		b.metrics.reconnects.Inc()
		delay := backoff(failures, 5*time.Second)
		b.log.Warn("listener disconnected; reconnecting", slog.String("error", err.Error()), slog.Duration("retry_in", delay))
		sleep(ctx, delay)
	}
}

// listenOnce connects, LISTENs and waits for notifications until the
// connection fails or ctx is done. connected runs once LISTEN succeeded.
func (b *Bridge) listenOnce(ctx context.Context, connected func()) error {
	cc := b.pool.Config().ConnConfig.Copy()
	// Name the connection after the channel, so operators (and tests) can
	// tell which backend listens for what.
	cc.RuntimeParams["application_name"] = termsafe.Truncate("notified-bridge listener "+b.cfg.Channel, 63)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.cfg.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on channel %q: %w", b.cfg.Channel, err)
	}
	// Make sure notifications reach this connection: through a
	// transaction-pooling proxy LISTEN succeeds, but what is notified later
	// never arrives. A probe sent from another connection tells.
	probe := "notified_probe_" + b.id
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{probe}.Sanitize()); err != nil {
		return fmt.Errorf("listen on the probe channel: %w", err)
	}
	if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, 'probe')", probe); err != nil {
		return fmt.Errorf("send the listener's probe: %w", err)
	}
	probeDeadline := time.Now().Add(probeTimeout)
	probed := false
	defer func() {
		b.listening.Store(false)
		b.metrics.listener.Set(0)
	}()
	connected()
	// Anything committed while we were not listening is in the outbox.
	b.kick()
	for {
		wait := b.cfg.PingInterval
		if !probed {
			wait = min(wait, max(time.Until(probeDeadline), time.Millisecond))
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if err == nil {
			if n.Channel == probe {
				if !probed {
					probed = true
					b.notificationsLost.Store(false)
					b.listening.Store(true)
					b.metrics.listener.Set(1)
					b.log.Info("listening")
				}
				continue
			}
			b.notified(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !timedOut {
			return fmt.Errorf("wait for notification: %w", err)
		}
		if !probed && !time.Now().Before(probeDeadline) && !b.notificationsLost.Swap(true) {
			b.log.Error("the listener receives no notifications: its connection seems to go through a transaction-pooling proxy such as PgBouncer in transaction mode",
				slog.String("effect", "events are dispatched only every poll interval"),
				slog.String("fix", "connect the bridge to Postgres directly or through a session-pooling proxy, or run with --poll-only"),
				slog.Duration("poll_interval", b.cfg.PollInterval))
		}
		// Quiet for a while: make sure the server is still there, so a
		// silently dead connection is noticed.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("ping listener connection: %w", err)
		}
	}
}

// probeTimeout is how long the listener waits for its probe notification
// before it reports that notifications do not reach it.
const probeTimeout = 5 * time.Second

// backoff is an exponential delay with jitter for the n-th consecutive
// failure, from 100ms up to ceiling.
func backoff(n int, ceiling time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 10)
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
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

// recentSet remembers the most recently recorded keys, so that the
// notifications for events this bridge has just dispatched cost no query.
type recentSet struct {
	mu     sync.Mutex
	keys   map[string]struct{}
	ring   []string
	next   int
	filled int
}

func newRecentSet(size int) *recentSet {
	return &recentSet{keys: make(map[string]struct{}, size), ring: make([]string, size)}
}

func (s *recentSet) add(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.keys[k]; ok {
			continue
		}
		if s.filled == len(s.ring) {
			delete(s.keys, s.ring[s.next])
		} else {
			s.filled++
		}
		s.ring[s.next] = k
		s.keys[k] = struct{}{}
		s.next = (s.next + 1) % len(s.ring)
	}
}

// without returns the keys of ks that are not in the set.
func (s *recentSet) without(ks []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range ks {
		if _, ok := s.keys[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func (s *recentSet) has(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[k]
	return ok
}

func (b *Bridge) hook(step string) error {
	if b.testHook == nil {
		return nil
	}
	return b.testHook(step)
}
