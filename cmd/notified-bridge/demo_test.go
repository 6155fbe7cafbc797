package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

func TestDemoCommand(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	out, stderr, code := runEnv(t, envWithURL(db.URL), "demo", "--events", "4", "--timeout", "1m")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "inserting 4 events")
	require.Contains(t, out, "events 4/4 recorded")
	require.Contains(t, out, "jobs per handler")
	require.Regexp(t, `event \d+ \(user_signed_up\): dispatched`, out)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--events", "0"}, "--events 0 must be at least 1"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout 0s must be positive"},
		{[]string{"--schema", "x", "demo"}, "demo works in a schema of its own: drop --schema / NOTIFIED_SCHEMA"},
	} {
		_, stderr, code := runEnv(t, envWithURL(db.URL), c.args...)
		requireUserError(t, stderr, code, c.want)
	}
}

// TestDemoWithAURLThatRefuses: a DATABASE_URL that is set is used, never
// replaced by a throwaway server, and a server that refuses connections is
// said once, in one line.
func TestDemoWithAURLThatRefuses(t *testing.T) {
	t.Parallel()
	out, stderr, code := runEnv(t, envWithURL("postgres://postgres@127.0.0.1:1/demo_db?connect_timeout=5"), "demo", "--events", "1")
	requireUserError(t, stderr, code, "connect to database demo_db on 127.0.0.1:1: ", "connection refused", "check DATABASE_URL and that the server is running")
	require.Equal(t, 1, strings.Count(stderr, "connection refused"), stderr)
	require.NotContains(t, out, "throwaway")
}
