// Package logging builds the loggers of notified's programs: the bridge's
// and the example worker's, so that both write the same lines for the same
// --log-level and --log-format.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// New returns a logger writing to w at level (debug, info, warn or error;
// empty: info) in format (text, json, or auto: text when w is a terminal,
// JSON otherwise; empty: auto). Durations are written as Go duration
// strings ("1.5s", "720h0m0s") in both formats, at any depth of groups:
// the text handler does so already, slog's JSON handler would write
// nanoseconds. One format in every line, whatever reads them.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl := slog.LevelInfo
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationText}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "auto", "":
		if IsTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q is not one of text, json, auto", format)
	}
}

// durationText writes a duration attribute as a Go duration string.
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
