package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/notified/notified/internal/termsafe"
)

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

// Why a notification was ignored, as the notified_notifications_ignored_total
// metric labels it.
const (
	ignoredNotAnID = "not_an_id"
	ignoredNoRow   = "no_row"
	ignoredTooMany = "too_many_waiting"
)
