package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/example"
	"github.com/notified/notified/internal/logging"
	"github.com/notified/notified/internal/testdb"
)

// logSample logs what the bridge logs: durations alone, in a group, and
// given as any.
func logSample(l *slog.Logger) {
	l.Info("batch dispatched", slog.Group("took", slog.Duration("claim", 1117008*time.Nanosecond), slog.Duration("commit", 2*time.Second)),
		slog.Duration("poll_interval", 5*time.Second), slog.Any("lag", 250*time.Millisecond), slog.String("retention", "720h0m0s"))
}

func TestLoggerWritesDurationsAsGoDurations(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := logging.New(&buf, "info", "json")
	require.NoError(t, err)
	logSample(l)
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got), buf.String())
	require.Equal(t, map[string]any{"claim": "1.117008ms", "commit": "2s"}, got["took"])
	require.Equal(t, "5s", got["poll_interval"])
	require.Equal(t, "250ms", got["lag"])
	require.Equal(t, "720h0m0s", got["retention"])

	buf.Reset()
	l, err = logging.New(&buf, "info", "text")
	require.NoError(t, err)
	logSample(l)
	require.Contains(t, buf.String(), " took.claim=1.117008ms took.commit=2s poll_interval=5s lag=250ms retention=720h0m0s\n")

	// The example worker writes the same lines.
	for _, format := range []string{"json", "text"} {
		var bridgeOut, workerOut bytes.Buffer
		b, err := logging.New(&bridgeOut, "info", format)
		require.NoError(t, err)
		w, err := example.NewLogger(&workerOut, "info", format)
		require.NoError(t, err)
		logSample(b)
		logSample(w)
		// Past the time, which differs.
		untimed := func(s string) string { _, rest, _ := strings.Cut(s, "level"); return rest }
		require.Equal(t, untimed(bridgeOut.String()), untimed(workerOut.String()), format)
	}
}

// TestBridgeLogsDurationsAsGoDurations: the running bridge's JSON lines
// carry no duration in nanoseconds.
func TestBridgeLogsDurationsAsGoDurations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "user_signed_up", "send_welcome")
	b := startBridge(t, db)
	insertEvent(t, db, "user_signed_up", `{}`)
	waitDispatched(t, db, 1, 15*time.Second)
	require.Equal(t, exitInterrupt, interrupt(t, b), "exit code after SIGINT")
	out := b.stderr.String()
	var starting, batch map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		switch m["msg"] {
		case "bridge starting":
			starting = m
		case "batch dispatched":
			batch = m
		}
	}
	require.NotNil(t, starting, out)
	require.NotNil(t, batch, out)
	for _, v := range []any{starting["poll_interval"], starting["retention"]} {
		s, ok := v.(string)
		require.True(t, ok, "%v is not text: %s", v, out)
		_, err := time.ParseDuration(s)
		require.NoError(t, err)
	}
	for step, v := range batch["took"].(map[string]any) {
		s, ok := v.(string)
		require.True(t, ok, "took.%s = %v", step, v)
		_, err := time.ParseDuration(s)
		require.NoError(t, err, "took.%s", step)
	}
}
