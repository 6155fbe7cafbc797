package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// parseTime reads a point in time: RFC 3339, "2006-01-02 15:04[:05]",
// "2006-01-02" (local time), or an age such as 24h or 90m (now minus it).
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("age %q is negative: use e.g. 24h for a day ago", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-27T10:00:00Z), a date (2026-11-27), or an age (24h)", s)
}

func fmtTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

// fmtDur rounds a duration for people.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		out := d.Round(time.Second).String()
		out = strings.TrimSuffix(out, "0s")
		return strings.TrimSuffix(out, "0m")
	}
}

// plural is "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func slicesClone(fs []cli.Flag) []cli.Flag { return append([]cli.Flag(nil), fs...) }
