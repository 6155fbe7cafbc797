package bridgetest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// Bundle is a test's database, with the capture trigger on its events
// table, and a bridge configuration for it.
type Bundle struct {
	DB     *testdb.DB
	Config bridge.Config
}

// Options change what Setup makes.
type Options struct {
	Table      string     // events table, default the test schema's events
	IDColumn   string     // default id
	NameColumn string     // default name
	NoTrigger  bool       // leave the capture trigger out
	DB         *testdb.DB // an existing test database, default a new one
}

// Setup makes a test database (or takes o.DB), installs the capture
// trigger on its events table and returns a configuration that polls
// every 200ms and records a missing row after 500ms.
func Setup(t testing.TB, o Options) *Bundle {
	t.Helper()
	db := o.DB
	if db == nil {
		db = testdb.New(t)
	}
	if o.Table == "" {
		o.Table = db.Events()
	}
	if !o.NoTrigger {
		_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{
			Schema: db.Schema, Table: o.Table, Channel: db.Channel, IDColumn: o.IDColumn,
		})
		require.NoError(t, err)
	}
	return &Bundle{DB: db, Config: bridge.Config{
		Schema: db.Schema, Table: o.Table, IDColumn: o.IDColumn, NameColumn: o.NameColumn,
		Channel: db.Channel, PollInterval: 200 * time.Millisecond, MissingGrace: 500 * time.Millisecond,
		Logger: Logger(t),
	}}
}

// Logger logs warnings and errors to the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Route adds the route of event to kind, with the defaults.
func (b *Bundle) Route(t testing.TB, event, kind string) {
	t.Helper()
	require.NoError(t, routes.NewStore(b.DB.Pool, b.DB.Schema).Add(context.Background(), routes.Route{Event: event, Kind: kind}))
}

// InsertEvents inserts one event per name into the test schema's events
// table and returns their ids.
func (b *Bundle) InsertEvents(t testing.TB, names ...string) []string {
	t.Helper()
	rows, err := b.DB.Pool.Query(context.Background(),
		"INSERT INTO "+b.DB.Events()+" (name, payload) SELECT n, jsonb_build_object('n', n) FROM unnest($1::text[]) AS n RETURNING id::text", names)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

// Outbox puts payloads in the outbox of the bundle's channel, as NOTIFYs
// sent by hand would.
func (b *Bundle) Outbox(t testing.TB, payloads ...string) {
	t.Helper()
	testdb.Exec(t, b.DB.Pool, "INSERT INTO "+b.DB.Schema+".notified_outbox (channel, event_id) SELECT $1, unnest($2::text[])",
		b.DB.Channel, payloads)
}

// Outcome is one event's dispatch record.
type Outcome struct {
	Outcome string
	Reason  string
	Name    string
}

// Outcomes reads every dispatch record, by event id.
func (b *Bundle) Outcomes(t testing.TB) map[string]Outcome {
	t.Helper()
	rows, err := b.DB.Pool.Query(context.Background(),
		"SELECT event_id, outcome, coalesce(reason, ''), coalesce(event_name, '') FROM "+b.DB.Schema+".notified_dispatch")
	require.NoError(t, err)
	out := map[string]Outcome{}
	for rows.Next() {
		var id string
		var o Outcome
		require.NoError(t, rows.Scan(&id, &o.Outcome, &o.Reason, &o.Name))
		out[id] = o
	}
	require.NoError(t, rows.Err())
	return out
}

// Start starts a bridge on pool (nil: the bundle's) with cfg until the
// test ends, and waits until it listens.
func (b *Bundle) Start(t testing.TB, pool *pgxpool.Pool, cfg bridge.Config) *bridge.Bridge {
	t.Helper()
	if pool == nil {
		pool = b.DB.Pool
	}
	br, err := bridge.New(context.Background(), pool, cfg)
	require.NoError(t, err)
	Start(t, br)
	return br
}

// WaitRecorded waits until at least n events are recorded and the outbox
// is empty.
func (b *Bundle) WaitRecorded(t testing.TB, n int) {
	t.Helper()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		recorded := testdb.Count(t, b.DB.Pool, "SELECT count(*) FROM "+b.DB.Schema+".notified_dispatch")
		backlog := testdb.Count(t, b.DB.Pool, "SELECT count(*) FROM "+b.DB.Schema+".notified_outbox")
		return recorded >= n && backlog == 0, fmt.Sprintf("%d of %d events recorded, %d in the outbox", recorded, n, backlog)
	})
}
