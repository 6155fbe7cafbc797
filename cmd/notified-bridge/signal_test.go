package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestRunExitsAsShellsExpectOnSignals: run stops cleanly on SIGINT and on
// SIGTERM and exits 130 and 143, as a shell reports a process stopped by
// them.
func TestRunExitsAsShellsExpectOnSignals(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)

	b := startBridge(t, db)
	require.Equal(t, 130, interrupt(t, b), "exit status after SIGINT")
	require.NotContains(t, b.stderr.String(), "notified-bridge: ", "a clean stop prints no error")
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_bridge")), "the bridge unregistered: it stopped cleanly")

	b = startBridge(t, db)
	require.Equal(t, 143, b.stop(t), "exit status after SIGTERM")
	require.NotContains(t, b.stderr.String(), "notified-bridge: ")
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_bridge")))
}

// TestDemoExitsAsShellsExpectOnSIGINT: demo interrupted cleans up and
// exits 130.
func TestDemoExitsAsShellsExpectOnSIGINT(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	out := &syncBuffer{}
	cmd := exec.Command(binary, "demo", "--events", "5000", "--timeout", "1m")
	cmd.Env = envWithURL(db.URL)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	testdb.WaitFor(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(out.String(), "inserting 5000 events"), "the demo inserts its events"
	})
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not exit within 30s of SIGINT: %s", out.String())
	}
	require.Equal(t, 130, cmd.ProcessState.ExitCode(), out.String())
	require.Contains(t, out.String(), "interrupted: everything stopped and cleaned up")
}
