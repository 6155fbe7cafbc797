package bridge

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/migrations"
)

// Defaults, kept from the Python listener where it had one.
const (
	DefaultTable        = ident.DefaultTable
	DefaultIDColumn     = ident.DefaultIDColumn
	DefaultNameColumn   = ident.DefaultNameColumn
	DefaultChannel      = ident.DefaultChannel
	DefaultPollInterval = 5 * time.Second
	DefaultBatchSize    = 1000
	DefaultConcurrency  = 2
	DefaultMissingGrace = 30 * time.Second
	DefaultPingInterval = 15 * time.Second
	// DefaultBatchTimeout is how long one statement of a dispatch
	// transaction may run.
	DefaultBatchTimeout = 30 * time.Second
	// DefaultMaxBatchBytes bounds the row data one dispatch transaction
	// reads.
	DefaultMaxBatchBytes = 8 << 20
	// DefaultLargeRowBytes is the size from which a row is not read by the
	// bridge.
	DefaultLargeRowBytes = 1 << 20
	// DefaultRetention is how long history (dispatch records, job outcomes,
	// replays) is kept.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultPruneInterval is how often a bridge prunes history.
	DefaultPruneInterval = time.Hour
)

// MaxIDLength is the longest id, in bytes, the bridge accepts for a text id
// column. Longer payloads are recorded as rejected.
const MaxIDLength = eventstable.MaxIDLength

// ErrTableNotFound and the other Err* values below are wrapped by the errors
// New returns for an events table it cannot dispatch from.
var (
	ErrTableNotFound  = eventstable.ErrTableNotFound
	ErrColumnNotFound = eventstable.ErrColumnNotFound
	ErrIDType         = eventstable.ErrIDType
	ErrNoPrivilege    = eventstable.ErrNoPrivilege
)

// KeepForever, as Config.Retention, keeps history forever.
const KeepForever time.Duration = -1

// Config is everything the bridge needs to know. The zero value of each field
// means its default.
type Config struct {
	// Schema holds River's and notified's tables; empty means the
	// connection's current schema (usually public).
	Schema string
	// Table is the events table, optionally schema-qualified ("app.events").
	Table string
	// IDColumn is the column the notification payload names.
	IDColumn string
	// NameColumn is the column whose value selects the routes.
	NameColumn string
	// Channel is the LISTEN channel, spelled exactly as producers pass it to
	// pg_notify.
	Channel string
	// PollInterval is how often the bridge catches up even without a
	// notification.
	PollInterval time.Duration
	// BatchSize is how many events one dispatch transaction takes at most.
	BatchSize int
	// Concurrency is how many dispatch transactions may run at once while a
	// backlog is drained.
	Concurrency int
	// MissingGrace is how long an id whose row is not visible is retried
	// before it is recorded as missing.
	MissingGrace time.Duration
	// MaxBatchBytes bounds the row data, as JSON, that one dispatch
	// transaction reads into the bridge: the rows are measured by the
	// server first, and those past the bound wait for the next batch.
	// With Concurrency transactions at once, it bounds the bridge's memory
	// whatever the rows' sizes (see docs/operations.md).
	MaxBatchBytes int64
	// LargeRowBytes is the size, as JSON, from which a row is never read by
	// the bridge: its jobs are inserted by a statement that reads the row in
	// the server. It must not exceed MaxBatchBytes.
	LargeRowBytes int64
	// BatchTimeout is how long one statement of a dispatch transaction may
	// run before the server cancels it. A batch that runs past it is
	// dispatched again in smaller parts; an event that runs past it alone
	// is recorded as rejected. A lock on the events table held longer than
	// a quarter of it fails the batch, which is retried.
	BatchTimeout time.Duration
	// PingInterval is how long the listener waits without traffic before it
	// pings the server to detect a dead connection.
	PingInterval time.Duration
	// Retention is how long history is kept: dispatch records, job
	// outcomes and replays older than it are pruned. KeepForever disables
	// pruning. A pruned dispatch record no longer stops a hand-sent NOTIFY
	// of the same id from dispatching the event again.
	Retention time.Duration
	// PruneInterval is how often the bridge prunes history.
	PruneInterval time.Duration
	// PollOnly turns the listener off: the bridge only polls the outbox
	// every PollInterval. For connections through a transaction-pooling
	// proxy (PgBouncer), where LISTEN does not work.
	PollOnly bool
	// NoCaptureTrigger says that events are announced without the capture
	// trigger (with publish, notify, or the outbox insert in the producer's
	// SQL): a table with no capture trigger is then not reported as a
	// problem. The table's oid and columns are still checked.
	NoCaptureTrigger bool
	// Version is reported in notified_bridge (see `notified-bridge status`).
	Version string
	// Logger receives the bridge's logs; nil means slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.IDColumn == "" {
		c.IDColumn = DefaultIDColumn
	}
	if c.NameColumn == "" {
		c.NameColumn = DefaultNameColumn
	}
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MissingGrace == 0 {
		c.MissingGrace = DefaultMissingGrace
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.LargeRowBytes == 0 {
		c.LargeRowBytes = min(DefaultLargeRowBytes, c.MaxBatchBytes)
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = DefaultPruneInterval
	}
	if c.Version == "" {
		c.Version = "devel"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// eventsTable is the events table c names.
func (c Config) eventsTable() eventstable.Spec {
	return eventstable.Spec{Table: c.Table, IDColumn: c.IDColumn, NameColumn: c.NameColumn}
}

// Validate reports the first thing wrong with c, whose defaults are set
// (New sets them and validates; so does a replay).
func (c Config) Validate() error {
	if err := migrations.ValidateSchema(c.Schema); err != nil {
		return err
	}
	if _, err := ParseTableName(c.Table); err != nil {
		return err
	}
	switch {
	case c.PollInterval < 0:
		return fmt.Errorf("PollInterval %s is negative: use a positive duration such as 5s or 500ms", c.PollInterval)
	case c.BatchSize < 1 || c.BatchSize > 10000:
		return fmt.Errorf("BatchSize %d is out of range: use 1 to 10000", c.BatchSize)
	case c.Concurrency < 1 || c.Concurrency > 64:
		return fmt.Errorf("Concurrency %d is out of range: use 1 to 64", c.Concurrency)
	case c.MissingGrace < 0:
		return fmt.Errorf("MissingGrace %s is negative: use a duration such as 30s", c.MissingGrace)
	case c.MaxBatchBytes < 1024:
		return fmt.Errorf("MaxBatchBytes %d is too small: use at least 1024", c.MaxBatchBytes)
	case c.LargeRowBytes < 1 || c.LargeRowBytes > c.MaxBatchBytes:
		return fmt.Errorf("LargeRowBytes %d is out of range: use 1 to MaxBatchBytes (%d)", c.LargeRowBytes, c.MaxBatchBytes)
	case c.BatchTimeout < 100*time.Millisecond:
		return fmt.Errorf("BatchTimeout %s is too short: use at least 100ms", c.BatchTimeout)
	case c.PingInterval < 0:
		return fmt.Errorf("PingInterval %s is negative", c.PingInterval)
	case c.Retention < 0 && c.Retention != KeepForever:
		return fmt.Errorf("Retention %s is negative: use a duration such as 720h, or KeepForever", c.Retention)
	case c.PruneInterval < 0:
		return fmt.Errorf("PruneInterval %s is negative", c.PruneInterval)
	}
	return ValidateChannel(c.Channel)
}

// ValidateChannel reports whether channel can be used as a NOTIFY channel:
// Postgres silently truncates names longer than 63 bytes.
func ValidateChannel(channel string) error { return ident.ValidateChannel(channel) }

// ParseTableName splits a configured table name into its schema (possibly
// empty) and table parts: "events" or "app.events". Each part is used as
// written, case and punctuation included, and is always quoted. A schema
// part that names one of Postgres' system schemas is refused with an error
// wrapping migrations.ErrSystemSchema.
func ParseTableName(name string) ([]string, error) { return ident.ParseTableName(name) }

// ParseInterval reads a poll interval as the Python listener's
// NOTIFIED_CHANNEL_SELECT_TIMEOUT did (a number of seconds, "5" or "0.5") or
// as a Go duration ("500ms", "2s"). It must be positive.
func ParseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs > float64(time.Duration(1<<62)/time.Second) {
			return 0, fmt.Errorf("interval %q is too long", s)
		}
		d = time.Duration(math.Round(secs * float64(time.Second)))
	} else {
		var perr error
		d, perr = time.ParseDuration(s)
		if perr != nil {
			return 0, fmt.Errorf("interval %q is not a number of seconds or a duration such as 500ms or 5s", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("interval %q is not positive: use a number of seconds such as 5, or a duration such as 500ms", s)
	}
	return d, nil
}
