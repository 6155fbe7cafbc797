package example

import (
	"io"
	"log/slog"

	"github.com/notified/notified/internal/logging"
)

// NewLogger returns a logger that writes as notified-bridge does with the
// same --log-level and --log-format: level debug, info, warn or error
// (empty: info); format text, json, or auto (empty too: text when w is a
// terminal, JSON otherwise); durations as Go duration strings ("1.5s") in
// both formats, where slog's JSON handler would write nanoseconds. A worker
// that logs like its bridge gives one format to whatever reads both.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	return logging.New(w, level, format)
}
