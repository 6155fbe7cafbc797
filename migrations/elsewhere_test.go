package migrations_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
)

// freshDatabase creates a database of the test's own, dropped when the test
// ends, for tests that look at every schema of the database.
func freshDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := testdb.Pool(t)
	name := ident.RandomName("t_migrations_")
	testdb.Exec(t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	u, err := url.Parse(testdb.URL())
	require.NoError(t, err)
	u.Path = "/" + name
	pool, err := pgxpool.New(context.Background(), u.String())
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		if _, err := admin.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return pool
}

// TestCheckNamesTheSchemaThatHasTheTables: notified's tables looked for in
// the current schema (public) or in a schema that does not exist, and found
// in another, are named there rather than migrate advised, which would
// create a second set; a schema that exists and is named gets the advice.
func TestCheckNamesTheSchemaThatHasTheTables(t *testing.T) {
	t.Parallel()
	pool := freshDatabase(t)
	ctx := context.Background()

	err := migrations.Check(ctx, pool, "")
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	require.ErrorContains(t, err, "in the current schema (version 0, want")
	require.ErrorContains(t, err, "run `notified-bridge migrate` first")

	_, err = migrations.Migrate(ctx, pool, "notified")
	require.NoError(t, err)
	err = migrations.Check(ctx, pool, "")
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	var elsewhere *migrations.ElsewhereError
	require.ErrorAs(t, err, &elsewhere)
	require.Equal(t, &migrations.ElsewhereError{Schema: "public", Found: []string{"notified"}}, elsewhere)
	require.EqualError(t, err, "notified's tables are not in schema public but in schema notified: set NOTIFIED_SCHEMA=notified (or --schema notified)")

	require.EqualError(t, migrations.Check(ctx, pool, "notifed"),
		"notified's tables are not in schema notifed but in schema notified: set NOTIFIED_SCHEMA=notified (or --schema notified)")
	testdb.Exec(t, pool, "CREATE SCHEMA other")
	err = migrations.Check(ctx, pool, "other")
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	require.ErrorContains(t, err, "run `notified-bridge migrate --schema other` first")

	// A schema whose name cannot be given is not named.
	testdb.Exec(t, pool, `CREATE SCHEMA "Bad-Name"; CREATE TABLE "Bad-Name".notified_migration (version int)`)
	_, err = migrations.Migrate(ctx, pool, "notified2")
	require.NoError(t, err)
	require.EqualError(t, migrations.Check(ctx, pool, ""),
		"notified's tables are not in schema public but in schemas notified, notified2: set NOTIFIED_SCHEMA (or --schema) to the one to use, e.g. NOTIFIED_SCHEMA=notified")

	_, err = migrations.Migrate(ctx, pool, "")
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, pool, ""))
}
