package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
)

// TestTablesInAnotherSchemaAreNamed: with notified's tables in schema
// notified and NOTIFIED_SCHEMA unset, every command that needs them says
// where they are and what to set, rather than advising migrate, which
// would create a second set in public; so does a schema that does not
// exist. A database of its own: the test looks at every schema.
func TestTablesInAnotherSchemaAreNamed(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	name := ident.RandomName("t_elsewhere_")
	testdb.Exec(t, pool, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	url := withDatabase(t, testdb.URL(), name)
	env := envWithURL(url)
	_, stderr, code := runEnv(t, env, "--schema", "notified", "migrate")
	require.Equal(t, 0, code, stderr)

	const want = "notified's tables are not in schema public but in schema notified: set NOTIFIED_SCHEMA=notified (or --schema notified)"
	for _, args := range [][]string{
		{"status"}, {"routes", "list"}, {"history", "1"}, {"dead-letters"}, {"run"}, {"install-trigger"}, {"notify", "1"},
	} {
		_, stderr, code := runEnv(t, env, args...)
		requireUserError(t, stderr, code, want)
	}
	_, stderr, code = runEnv(t, env, "--schema", "notifed", "routes", "list")
	requireUserError(t, stderr, code, "notified's tables are not in schema notifed but in schema notified: set NOTIFIED_SCHEMA=notified (or --schema notified)")
	_, stderr, code = runEnv(t, append(env, "NOTIFIED_SCHEMA=notified"), "routes", "list")
	require.Equal(t, 0, code, stderr)
}
