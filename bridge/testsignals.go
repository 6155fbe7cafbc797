package bridge

import "github.com/notified/notified/history"

// testSignals are calls the bridge makes when something happened, so that a
// test waits for the event itself rather than sleeping and hoping that the
// bridge was quick enough. Only tests set them (export_test.go); in
// production every one is nil, and a signal costs a nil check.
type testSignals struct {
	// drained: the main drainer finished a round, after the follow-up drain
	// of the ids it put in the outbox.
	drained testSignal[drainRound]
	// committed: a dispatch transaction committed and its outcomes were
	// logged and counted; the value is how many events it recorded.
	committed testSignal[int]
	// ignored: notifications that named no event were counted (and logged,
	// unless they were logged recently).
	ignored testSignal[ignoredNotifications]
	// heartbeat: this bridge's row in notified_bridge was refreshed.
	heartbeat testSignal[struct{}]
	// pruned: history past the retention was pruned.
	pruned testSignal[history.Pruned]
}

// testSignal is one of the bridge's test signals; nil outside tests.
type testSignal[T any] func(T)

// send signals v, if a test listens.
func (s testSignal[T]) send(v T) {
	if s != nil {
		s(v)
	}
}

// drainRound is what one round of the main drainer did.
type drainRound struct {
	// notifications is how many notified payloads the round is done with:
	// those of events this bridge had just recorded, dropped without a
	// query, and those whose wait had passed, looked up in the events
	// table.
	notifications int
	// addedToOutbox is how many notified ids the round put in the outbox
	// (and then dispatched).
	addedToOutbox int
}

// ignoredNotifications are notifications counted as ignored at once.
type ignoredNotifications struct {
	reason string // as notified_notifications_ignored_total labels it
	n      int
}
