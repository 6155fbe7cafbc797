package bridge

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/eventstable"
)

// SetTestHook makes every dispatch transaction of b call hook between its
// steps; an error from hook aborts the transaction as a crash would.
func SetTestHook(b *Bridge, hook func(step string) error) { b.testHook = hook }

// DispatchOnce runs one dispatch transaction and returns how many outbox rows
// it claimed.
func DispatchOnce(ctx context.Context, b *Bridge) (int, error) {
	res, err := b.dispatchBatch(ctx, selection{})
	if err != nil {
		return 0, err
	}
	b.afterCommit(res)
	return res.claimed, nil
}

// Steps of the dispatch transaction, for SetTestHook.
var Steps = []string{stepClaimed, stepFetched, stepRecorded, stepInserted}

// ParseIDForTest parses a payload as an id of a column whose type is
// typname (int2, int4, int8, uuid, text, varchar) spelled formatted.
func ParseIDForTest(typname, formatted, payload string) (string, error) {
	t, err := eventstable.ForIDType(typname, formatted)
	if err != nil {
		return "", ErrIDType
	}
	return t.ParseID(payload)
}

// ClaimSQL and FetchSQL are the queries of the dispatch transaction's claim
// and fetch, for plans in tests.
func ClaimSQL(b *Bridge) string { return b.q.claim }

// FetchSQL is the query that reads a batch's rows from the events table.
func FetchSQL(b *Bridge) string { return b.table.Load().fetch }

// Signals record what a bridge did, for a test to wait on rather than sleep.
type Signals struct {
	// Drained: the main drainer finished a round, after the follow-up
	// drain of the ids it put in the outbox.
	Drained *Signal[DrainRound]
	// Committed: a dispatch transaction committed and its outcomes were
	// logged and counted; the value is how many events it recorded.
	Committed *Signal[int]
	// Ignored: notifications that named no event were counted, and logged
	// unless they were logged recently.
	Ignored *Signal[Ignored]
	// Heartbeat: the bridge's row in notified_bridge was refreshed.
	Heartbeat *Signal[struct{}]
	// Pruned: history past the retention was pruned.
	Pruned *Signal[history.Pruned]
}

// DrainRound is what one round of the main drainer did.
type DrainRound struct {
	// Notifications is how many notified payloads the round is done with:
	// dropped as just recorded by this bridge, or looked up in the events
	// table once their wait had passed.
	Notifications int
	// AddedToOutbox is how many notified ids the round put in the outbox
	// and then dispatched.
	AddedToOutbox int
}

// Ignored is a count of ignored notifications, with why.
type Ignored struct {
	Reason        string
	Notifications int
}

// WatchSignals makes b report to the Signals it returns. Call it before
// b.Run.
func WatchSignals(b *Bridge) *Signals {
	s := &Signals{Drained: newSignal[DrainRound](), Committed: newSignal[int](), Ignored: newSignal[Ignored](),
		Heartbeat: newSignal[struct{}](), Pruned: newSignal[history.Pruned]()}
	b.signals = testSignals{
		drained: func(r drainRound) {
			s.Drained.send(DrainRound{Notifications: r.notifications, AddedToOutbox: r.addedToOutbox})
		},
		committed: s.Committed.send,
		ignored:   func(i ignoredNotifications) { s.Ignored.send(Ignored{Reason: i.reason, Notifications: i.n}) },
		heartbeat: s.Heartbeat.send,
		pruned:    s.Pruned.send,
	}
	return s
}

// SignalTimeout is how long a test waits for a signal before it fails: long
// enough for a loaded machine.
const SignalTimeout = 20 * time.Second

// Signal is every value a bridge sent on one of its test signals, in order.
// Sending never blocks the bridge.
type Signal[T any] struct {
	mu     sync.Mutex
	values []T
	sent   chan struct{} // closed, and replaced, at each send
}

func newSignal[T any]() *Signal[T] { return &Signal[T]{sent: make(chan struct{})} }

func (s *Signal[T]) send(v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, v)
	close(s.sent)
	s.sent = make(chan struct{})
}

// All returns the values sent so far.
func (s *Signal[T]) All() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.values)
}

// WaitUntil waits until done is true of the values sent so far, checking
// after each send, and returns them. It fails the test after SignalTimeout.
func (s *Signal[T]) WaitUntil(t testing.TB, what string, done func(all []T) bool) []T {
	t.Helper()
	deadline := time.NewTimer(SignalTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		all, sent := slices.Clone(s.values), s.sent
		s.mu.Unlock()
		if done(all) {
			return all
		}
		select {
		case <-sent:
		case <-deadline.C:
			t.Fatalf("%s: not signalled within %s (%d signals: %v)", what, SignalTimeout, len(all), all)
		}
	}
}
