package bridge

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/notified/notified/history"
)

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
		if r.outcome != history.OutcomeMissing { // a missing id may be notified again once its row exists
			keys = append(keys, r.key)
		}
		switch r.outcome {
		case history.OutcomeMissing:
			missing++
			b.log.Warn(msgEventMissing, slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case history.OutcomeRejected:
			rejected++
			b.log.Warn(msgEventRejected, slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case history.OutcomeUnrouted:
			unrouted++
			unroutedNames[*r.name]++
			b.log.Debug("event unrouted", slog.String("event_id", r.key), slog.String("reason", *r.reason))
		case history.OutcomeDispatched:
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
