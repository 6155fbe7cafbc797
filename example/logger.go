package example

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// NewLogger returns a logger that writes as notified-bridge does with the
// same --log-level and --log-format: level debug, info, warn or error
// (empty: info); format text, json, or auto (empty too: text when w is a
// terminal, JSON otherwise); durations as Go duration strings ("1.5s") in
// both formats, where slog's JSON handler would write nanoseconds. A worker
// that logs like its bridge gives one format to whatever reads both.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
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
		if isTerminal(w) {
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

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
