package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"24h", "90m", "0", "0s", "-1h", "1.5h", " 24h ", "2562047h", "9999999h", "1h-1m",
		"2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123456789+02:00", "2026-11-27T10:00:00", "2026-11-27 10:00:00",
		"2026-11-27 10:00", "2026-11-27", "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31T23:59:59Z",
		"2026-11-27T10:00:00+25:00", "yesterday", "", " ", "1d", "2026-11-27T10:00:00Z\n",
	} {
		f.Add(s, int64(1795000000))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		now := time.Unix(unix%(1<<35), 0)
		got, err := parseTime(s, now)
		ts := strings.TrimSpace(s)
		if err != nil {
			require.Contains(t, err.Error(), strconv.Quote(ts))
			return
		}
		if d, derr := time.ParseDuration(ts); derr == nil {
			// An age: now minus it.
			require.GreaterOrEqual(t, d, time.Duration(0), "negative age %q accepted", s)
			require.True(t, got.Equal(now.Add(-d)), "%q at %s: %s", s, now, got)
			return
		}
		// A point in time: reads back the same through parseTime.
		again, err := parseTime(got.Format(time.RFC3339Nano), now)
		require.NoError(t, err, "%q -> %s", s, got.Format(time.RFC3339Nano))
		require.True(t, again.Equal(got), "%q -> %s -> %s", s, got, again)
	})
}

// argumentsApp is a command shaped like notify or dead-letters retry: a
