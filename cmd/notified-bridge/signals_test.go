package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSignalContextNamesTheSignalThatCancelledIt: once the context is seen
// cancelled, the signal that cancelled it is known at once (no second
// listener to wait for), every time; without a signal it is nil, and stop
// is idempotent.
func TestSignalContextNamesTheSignalThatCancelledIt(t *testing.T) {
	for range 200 {
		ctx, received, stop := signalContext(context.Background(), syscall.SIGUSR1)
		require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGUSR1))
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the signal did not cancel the context")
		}
		require.Equal(t, syscall.SIGUSR1, received(), "the signal is known as soon as the context is cancelled")
		stop()
		require.Equal(t, syscall.SIGUSR1, received(), "and stays known after stop")
	}

	ctx, received, stop := signalContext(context.Background(), syscall.SIGUSR1)
	require.NoError(t, ctx.Err())
	require.Nil(t, received())
	stop()
	stop()
	require.Error(t, ctx.Err(), "stop cancels the context")
	require.Nil(t, received(), "no signal was received")
}
