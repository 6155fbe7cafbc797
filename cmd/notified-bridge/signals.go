package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
)

// stoppedBy is the cause of a context cancelled by a signal.
type stoppedBy struct{ sig os.Signal }

func (s stoppedBy) Error() string { return "stopped by " + s.sig.String() }

// signalContext returns a context cancelled by the first of sigs the
// process receives, a function that says which signal cancelled it (nil:
// none did), and a function that stops listening for the signals.
//
// The signal is the context's cancellation cause, so whoever sees the
// context cancelled also sees the signal that did it. (Listening a second
// time, beside signal.NotifyContext, raced: the command could see its
// context cancelled and return before the signal reached the second
// listener, and a SIGTERM then exited 0 instead of 143.)
func signalContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, received func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case sig := <-ch:
			cancel(stoppedBy{sig})
		case <-done:
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			wg.Wait()
			cancel(nil)
		})
	}
	received = func() os.Signal {
		var s stoppedBy
		if errors.As(context.Cause(ctx), &s) {
			return s.sig
		}
		return nil
	}
	return ctx, received, stop
}
