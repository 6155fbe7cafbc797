// Package bridgetest runs bridges in tests.
package bridgetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
)

// Run runs b until the test ends or stop is called, whichever comes first,
// and fails the test if b.Run returns an error or does not stop within 30s.
// stop may be called more than once.
func Run(t testing.TB, b *bridge.Bridge) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("bridge run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("bridge did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Start is Run, and then waits until b listens.
func Start(t testing.TB, b *bridge.Bridge) (stop func()) {
	t.Helper()
	stop = Run(t, b)
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) { return b.Listening(), "bridge not listening" })
	return stop
}
