// Package testdb gives each test its own schema in a real Postgres, migrated
// and with an events table, so tests run in parallel without seeing each
// other's rows or notifications.
package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/pgcluster"
	"github.com/notified/notified/migrations"
)

// DefaultURL is used when neither TEST_DATABASE_URL nor DATABASE_URL is set
// and a server answers there.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	resolveOnce sync.Once
	resolvedURL string
	resolveErr  error
)

// URL returns the database URL tests connect to: TEST_DATABASE_URL, else
// DATABASE_URL, else DefaultURL when a Postgres server answers there, else
// a throwaway server started from the Postgres binaries installed on the
// machine, shared by the tests of this process and removed after it exits.
// It is resolved once per process.
func URL() string {
	resolveOnce.Do(func() {
		var c *pgcluster.Cluster
		resolvedURL, c, resolveErr = Resolve(context.Background(), os.Getenv, DefaultURL)
		if c != nil {
			resolveErr = c.StopWhenProcessExits(os.Getpid())
		}
	})
	return resolvedURL
}

// Resolve picks the test database as URL describes, reading the environment
// with getenv and probing defaultURL. When it starts a throwaway server it
// returns it too; the caller stops it.
func Resolve(ctx context.Context, getenv func(string) string, defaultURL string) (string, *pgcluster.Cluster, error) {
	for _, k := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if v := getenv(k); v != "" {
			return v, nil, nil
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, defaultURL)
	if err == nil {
		_ = conn.Close(ctx)
		return defaultURL, nil, nil
	}
	probeErr := err
	c, err := pgcluster.Start(ctx, pgcluster.Options{MaxConnections: 300})
	if err != nil {
		return "", nil, fmt.Errorf("no test database: TEST_DATABASE_URL and DATABASE_URL are not set, %s does not answer (%v), and no throwaway server could be started: %w",
			defaultURL, probeErr, err)
	}
	return c.URL(), c, nil
}

// DB is one test's corner of the database.
type DB struct {
	// Pool connects to the test database.
	Pool *pgxpool.Pool
	// Schema is the test's own schema, migrated, holding an events table.
	Schema string
	// Channel is a NOTIFY channel no other test uses.
	Channel string
	// URL is the database URL, for subprocesses.
	URL string
}

// Events is the schema-qualified name of the test's events table.
func (d *DB) Events() string { return d.Schema + ".events" }

// Options adjust what New prepares.
type Options struct {
	// NoMigrate leaves the schema empty: no River or notified tables.
	NoMigrate bool
	// NoEventsTable skips creating the default events table.
	NoEventsTable bool
}

var (
	sharedMu    sync.Mutex
	sharedPools = map[string]*pgxpool.Pool{}
)

// Pool returns a pool for the test database, shared by the tests of the
// package, with room for many parallel tests.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	url := URL()
	if resolveErr != nil {
		t.Fatal(resolveErr)
	}
	if p, ok := sharedPools[url]; ok {
		return p
	}
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.MaxConns = 20
	cfg.ConnConfig.RuntimeParams["application_name"] = "notified-test"
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("connect to test database %s: %v (set TEST_DATABASE_URL, or start Postgres on 127.0.0.1:5432)", url, err)
	}
	sharedPools[url] = p
	return p
}

// New creates a fresh schema for the test, migrates it, creates
// schema.events (id bigserial, name text, payload jsonb, created_at) and
// drops it all when the test ends.
func New(t testing.TB, opts ...Options) *DB {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	pool := Pool(t)
	ctx := context.Background()
	schema := ident.RandomName("t_" + strings.ToLower(sanitize(t.Name(), 24)) + "_")
	_, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(cctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	if !o.NoMigrate {
		_, err := migrations.Migrate(ctx, pool, schema)
		require.NoError(t, err)
	}
	if !o.NoEventsTable {
		_, err := pool.Exec(ctx, `CREATE TABLE `+pgx.Identifier{schema, "events"}.Sanitize()+` (
			id bigserial PRIMARY KEY,
			name text,
			payload jsonb,
			created_at timestamptz NOT NULL DEFAULT now()
		)`)
		require.NoError(t, err)
	}
	return &DB{Pool: pool, Schema: schema, Channel: "ch_" + schema, URL: URL()}
}

func sanitize(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// WaitFor polls cond every 20ms until it returns true or timeout passes, then
// fails the test with what cond last described.
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %s", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SearchPathConn returns a dedicated connection whose search_path is the
// test's schema, closed when the test ends, for code that uses the current
// schema.
func SearchPathConn(t testing.TB, db *DB) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{db.Schema}.Sanitize()
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// NotifyTimeout is how long NextNotification waits.
const NotifyTimeout = 10 * time.Second

// Listen opens a dedicated connection listening on channels (spelled
// exactly, quoted), closed when the test ends.
func Listen(t testing.TB, db *DB, channels ...string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	for _, ch := range channels {
		_, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize())
		require.NoError(t, err, "listen on %q", ch)
	}
	return conn
}

// NextNotification waits up to NotifyTimeout for the next notification on
// conn.
func NextNotification(t testing.TB, conn *pgx.Conn) *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), NotifyTimeout)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	require.NoError(t, err, "no notification within %s", NotifyTimeout)
	return n
}

// NoNotification checks that nothing is pending on conn: it sends a marker
// notification on marker (which conn must listen on) and requires it to be
// the next one to arrive.
func NoNotification(t testing.TB, db *DB, conn *pgx.Conn, marker string) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), "SELECT pg_notify($1, 'marker')", marker)
	require.NoError(t, err)
	n := NextNotification(t, conn)
	require.Equal(t, marker, n.Channel, "unexpected notification %q on %q", n.Payload, n.Channel)
	require.Equal(t, "marker", n.Payload)
}

// Count runs a count query and returns the number.
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

// Exec runs a statement and fails the test on error.
func Exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// Cluster starts a throwaway server of the test's own, stopped when the
// test ends. Without Postgres's server binaries the test is skipped.
func Cluster(t testing.TB, opts ...pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Start(context.Background(), opts...)
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop(context.Background())) })
	return c
}
