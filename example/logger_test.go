package example_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/example"
)

func TestNewLoggerWritesDurationsAsText(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := example.NewLogger(&buf, "", "json")
	require.NoError(t, err)
	logger.Debug("not at info")
	logger.Info("job done", slog.Duration("took", 1500*time.Millisecond),
		slog.Group("steps", slog.Duration("send", 3*time.Millisecond)), slog.Any("wait", 2*time.Minute))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, buf.String())
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &got))
	require.Equal(t, "1.5s", got["took"])
	require.Equal(t, map[string]any{"send": "3ms"}, got["steps"])
	require.Equal(t, "2m0s", got["wait"])

	buf.Reset()
	logger, err = example.NewLogger(&buf, "warn", "text")
	require.NoError(t, err)
	logger.Info("not at warn")
	logger.Warn("slow", slog.Duration("took", 1500*time.Millisecond))
	require.Contains(t, buf.String(), "level=WARN msg=slow took=1.5s\n")
	require.NotContains(t, buf.String(), "not at warn")

	buf.Reset()
	logger, err = example.NewLogger(&buf, "info", "auto") // a buffer is no terminal
	require.NoError(t, err)
	logger.Info("x")
	require.True(t, json.Valid(buf.Bytes()), buf.String())
}

func TestNewLoggerErrors(t *testing.T) {
	t.Parallel()
	_, err := example.NewLogger(&bytes.Buffer{}, "loud", "json")
	require.EqualError(t, err, `log level "loud" is not one of debug, info, warn, error`)
	_, err = example.NewLogger(&bytes.Buffer{}, "info", "xml")
	require.EqualError(t, err, `log format "xml" is not one of text, json, auto`)
}
