package migrations_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
)

var notifiedTables = []string{"notified_outbox", "notified_dispatch", "notified_route", "notified_migration"}

// tableExists reports whether schema.name is a table.
func tableExists(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	var ok bool
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{db.Schema, name}.Sanitize()).Scan(&ok))
	return ok
}

func freshSchema(t *testing.T) *testdb.DB {
	return testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
}

func TestMigrateFreshSchema(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()

	for _, name := range append([]string{"river_job"}, notifiedTables...) {
		require.False(t, tableExists(t, db, name), "%s exists before migrating", name)
	}

	res, err := migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Equal(t, db.Schema, res.Schema)
	require.NotEmpty(t, res.RiverVersions, "River's migrations were applied")
	require.Equal(t, []int{1, 2, 3}, res.Versions)

	for _, name := range append([]string{"river_job", "river_leader", "river_queue"}, notifiedTables...) {
		require.True(t, tableExists(t, db, name), "%s is missing after migrating", name)
	}
	require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_migration"}.Sanitize()+" WHERE version = 1 AND name = 'notified'"))

	v, err := migrations.Current(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Equal(t, migrations.Latest(), v)
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema))

	// Nothing leaked into public.
	require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'notified%'"))
}

func TestMigrateCreatesSchema(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()
	schema := db.Schema + "_new"
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})

	res, err := migrations.Migrate(ctx, db.Pool, schema)
	require.NoError(t, err)
	require.Equal(t, schema, res.Schema)
	require.NoError(t, migrations.Check(ctx, db.Pool, schema))
}

func TestMigrateMixedCaseSchema(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()
	schema := "T_Mixed_" + db.Schema[len(db.Schema)-8:]
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})

	_, err := migrations.Migrate(ctx, db.Pool, schema)
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, db.Pool, schema))
	for _, name := range append([]string{"river_job", "river_queue"}, notifiedTables...) {
		var ok bool
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, name}.Sanitize()).Scan(&ok))
		require.True(t, ok, "%s is in schema %s as spelled", name, schema)
	}
	require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_namespace WHERE nspname = lower($1)", schema), "no lower-cased schema was created")
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()

	first, err := migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.NotEmpty(t, first.Versions)

	second, err := migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Equal(t, db.Schema, second.Schema)
	require.Empty(t, second.RiverVersions, "River applied nothing the second time")
	require.Empty(t, second.Versions, "notified applied nothing the second time")
	require.NotNil(t, second.Versions, "an empty list, not null, for JSON output")
	require.NotNil(t, second.RiverVersions)
}

// migrateConcurrently starts n Migrate calls on db's schema at once and
// requires each to succeed.
func migrateConcurrently(t *testing.T, db *testdb.DB, n int) []*migrations.Result {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]*migrations.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = migrations.Migrate(context.Background(), db.Pool, db.Schema)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "migrator %d", i)
	}
	return results
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()

	results := migrateConcurrently(t, db, 4)
	applied := 0
	for i := range results {
		applied += len(results[i].Versions)
	}
	require.Equal(t, len(mustAll(t)), applied, "each of notified's migrations was applied exactly once")
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema))
	require.Equal(t, len(mustAll(t)), testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_migration"}.Sanitize()))
}

// TestMigrateConcurrentlyNotifiedPart runs concurrent migrators where River's
// tables exist already, so only notified's own, locked, part has work to do.
func TestMigrateConcurrentlyNotifiedPart(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	_, err := migrations.Down(ctx, db.Pool, db.Schema, 0)
	require.NoError(t, err)

	results := migrateConcurrently(t, db, 4)
	applied := 0
	for i := range results {
		require.Empty(t, results[i].RiverVersions)
		applied += len(results[i].Versions)
	}
	require.Equal(t, len(mustAll(t)), applied, "each of notified's migrations was applied exactly once")
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema))
}

func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()

	// Put a route in to see that Down really drops the tables.
	_, err := db.Pool.Exec(ctx, "INSERT INTO "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()+" (event_name, kind) VALUES ('e', 'k')")
	require.NoError(t, err)

	reverted, err := migrations.Down(ctx, db.Pool, db.Schema, 0)
	require.NoError(t, err)
	require.Equal(t, []int{3, 2, 1}, reverted)
	for _, name := range []string{"notified_outbox", "notified_dispatch", "notified_route", "notified_job", "notified_replay", "notified_bridge"} {
		require.False(t, tableExists(t, db, name), "%s still exists after Down", name)
	}
	require.True(t, tableExists(t, db, "river_job"), "Down leaves River's tables alone")

	v, err := migrations.Current(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Zero(t, v)
	require.ErrorIs(t, migrations.Check(ctx, db.Pool, db.Schema), migrations.ErrNotMigrated)

	// Down again has nothing to do.
	reverted, err = migrations.Down(ctx, db.Pool, db.Schema, 0)
	require.NoError(t, err)
	require.Empty(t, reverted)

	res, err := migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, res.Versions)
	require.Empty(t, res.RiverVersions)
	for _, name := range notifiedTables {
		require.True(t, tableExists(t, db, name), "%s is missing after migrating again", name)
	}
	require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize()))
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema))
}

func TestDownToLatestRevertsNothing(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()

	reverted, err := migrations.Down(ctx, db.Pool, db.Schema, migrations.Latest())
	require.NoError(t, err)
	require.Empty(t, reverted)
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema))
}

func TestValidateSchema(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "notified", "_x", "A1_b", "t_" + strings.Repeat("a", 44)} {
		require.NoError(t, migrations.ValidateSchema(ok), "%q", ok)
	}
	require.Len(t, "t_"+strings.Repeat("a", 44), 46)

	for _, bad := range []string{"bad-name", "1abc", strings.Repeat("a", 47), "a b", `a"b`, "a.b", "é"} {
		err := migrations.ValidateSchema(bad)
		require.Error(t, err, "%q", bad)
		require.Contains(t, err.Error(), "is not valid: use letters, digits and underscores, at most 46 characters")
	}
	require.ErrorContains(t, migrations.ValidateSchema("bad-name"), `Schema "bad-name" is not valid`)
}

// systemSchemaSeeds are schema names around Postgres' own: the system
// schemas, the pg_ prefix, and names that only look like them.
var systemSchemaSeeds = []string{
	"pg_catalog", "information_schema", "pg_toast", "pg_temp", "pg_temp_3", "pg_toast_temp_3", "pg_", "pg_notified",
	"PG_CATALOG", "Pg_catalog", "Information_Schema", "INFORMATION_SCHEMA", "information_schema_x", "pg", "pgx", "_pg_catalog",
}

func TestValidateSchemaRefusesSystemSchemas(t *testing.T) {
	t.Parallel()
	for _, s := range systemSchemaSeeds {
		err := migrations.ValidateSchema(s)
		if s == "information_schema" || strings.HasPrefix(s, "pg_") {
			require.ErrorIs(t, err, migrations.ErrSystemSchema, "%q", s)
			require.True(t, migrations.IsSystemSchema(s), "%q", s)
			continue
		}
		// Quoted as written, these are ordinary schemas.
		require.NoError(t, err, "%q", s)
		require.False(t, migrations.IsSystemSchema(s), "%q", s)
	}
	require.EqualError(t, migrations.ValidateSchema("information_schema"),
		`Schema "information_schema" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`)
}

// TestSystemSchemasAsPostgresSeesThem checks IsSystemSchema against a real
// Postgres: every schema of the catalog that Postgres made is one, a pg_
// name is one exactly when CREATE SCHEMA refuses it, and the look-alikes
// can be created.
func TestSystemSchemasAsPostgresSeesThem(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()

	// The temporary schemas exist once a session has used one.
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "CREATE TEMP TABLE system_schema_probe (v int) ON COMMIT DROP")
	require.NoError(t, err)
	rows, err := conn.Query(ctx, "SELECT nspname::text FROM pg_namespace WHERE oid < 16384 OR nspname LIKE 'pg\\_%'")
	require.NoError(t, err)
	builtin, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Subset(t, builtin, []string{"pg_catalog", "information_schema", "pg_toast"})
	require.Contains(t, strings.Join(builtin, " "), "pg_temp_")
	for _, s := range builtin {
		if s == "public" {
			continue // made by initdb, and an application's to use
		}
		require.True(t, migrations.IsSystemSchema(s), "%q", s)
	}

	for _, s := range systemSchemaSeeds {
		func() {
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			_, err = tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{s}.Sanitize())
			switch {
			case strings.HasPrefix(s, "pg_"):
				require.ErrorContains(t, err, "unacceptable schema name", "%q", s)
			case s == "information_schema":
				require.ErrorContains(t, err, "already exists")
			default:
				require.NoError(t, err, "%q is an ordinary schema", s)
			}
		}()
	}
}

func TestMigrateRefusesSystemSchemas(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()

	for _, s := range []string{"information_schema", "pg_catalog", "pg_temp_1"} {
		_, err := migrations.Migrate(ctx, pool, s)
		require.ErrorIs(t, err, migrations.ErrSystemSchema)
		_, err = migrations.Down(ctx, pool, s, 0)
		require.ErrorIs(t, err, migrations.ErrSystemSchema)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ('information_schema', 'pg_catalog') AND (c.relname LIKE 'river%' OR c.relname LIKE 'notified%')`).Scan(&n))
	require.Zero(t, n, "nothing was created in a system schema")
}

func TestResolveSchemaRefusesASystemCurrentSchema(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()

	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	defer func() {
		_, err := conn.Exec(context.Background(), "RESET search_path")
		require.NoError(t, err)
	}()
	for _, path := range []string{"information_schema", "pg_catalog", "pg_toast, public"} {
		_, err = conn.Exec(ctx, "SELECT set_config('search_path', $1, false)", path)
		require.NoError(t, err)
		_, err = migrations.ResolveSchema(ctx, conn, "")
		require.ErrorIs(t, err, migrations.ErrSystemSchema, "search_path %s", path)
		require.ErrorContains(t, err, "set Schema, or put a schema of your own first in the search_path")
	}
}

func TestInvalidSchemaRejected(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()

	_, err := migrations.Migrate(ctx, pool, "bad-name")
	require.ErrorContains(t, err, `Schema "bad-name" is not valid`)
	_, err = migrations.Down(ctx, pool, "1abc", 0)
	require.ErrorContains(t, err, `Schema "1abc" is not valid`)

	var exists bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'bad-name')").Scan(&exists))
	require.False(t, exists, "no schema was created")
}

func TestCheckUnmigrated(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()

	v, err := migrations.Current(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Zero(t, v)

	err = migrations.Check(ctx, db.Pool, db.Schema)
	require.Error(t, err)
	require.True(t, errors.Is(err, migrations.ErrNotMigrated))
	require.Contains(t, err.Error(), "notified-bridge migrate --schema "+db.Schema)
	require.Contains(t, err.Error(), "schema "+db.Schema+" (version 0, want 3)")
}

func TestCheckCurrentSchema(t *testing.T) {
	t.Parallel()
	db := freshSchema(t)
	ctx := context.Background()

	conn := testdb.SearchPathConn(t, db)
	err := migrations.Check(ctx, conn, "")
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	require.Contains(t, err.Error(), "in the current schema")
	require.Contains(t, err.Error(), "run `notified-bridge migrate` first")

	resolved, err := migrations.ResolveSchema(ctx, conn, "")
	require.NoError(t, err)
	require.Equal(t, db.Schema, resolved)

	_, err = migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, conn, ""))
}

func TestResolveSchemaWithoutCurrentSchema(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()

	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "SELECT set_config('search_path', 'no_such_schema_anywhere', false)")
	require.NoError(t, err)
	defer func() {
		_, err := conn.Exec(context.Background(), "RESET search_path")
		require.NoError(t, err)
	}()

	_, err = migrations.ResolveSchema(ctx, conn, "")
	require.ErrorContains(t, err, "the search_path names no existing schema; set the schema")

	got, err := migrations.ResolveSchema(ctx, conn, "given")
	require.NoError(t, err)
	require.Equal(t, "given", got)
}

func mustAll(t *testing.T) []migrations.Migration {
	t.Helper()
	all, err := migrations.All()
	require.NoError(t, err)
	return all
}

func TestAll(t *testing.T) {
	t.Parallel()
	all := mustAll(t)
	require.NotEmpty(t, all)
	for i, m := range all {
		require.Equal(t, i+1, m.Version, "versions are 1, 2, ... in order")
		require.NotEmpty(t, m.Name)
		require.NotEmpty(t, strings.TrimSpace(m.Up), "migration %d has up SQL", m.Version)
		require.NotEmpty(t, strings.TrimSpace(m.Down), "migration %d has down SQL", m.Version)
		// River's tables are River's: notified's migrations read river_job
		// and hang a trigger on it, and never create or alter them.
		for _, stmt := range []string{"CREATE TABLE river_", "ALTER TABLE river_", "DROP TABLE river_", "CREATE INDEX river_"} {
			require.NotContains(t, m.Up, stmt)
			require.NotContains(t, m.Down, stmt)
		}
	}
	require.Equal(t, all[len(all)-1].Version, migrations.Latest())

	first := all[0]
	require.Equal(t, "notified", first.Name)
	for _, table := range []string{"notified_route", "notified_outbox", "notified_dispatch"} {
		require.Contains(t, first.Up, "CREATE TABLE "+table)
		require.Contains(t, first.Down, "DROP TABLE IF EXISTS "+table)
	}
}

func TestQualify(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"notified_outbox"`, migrations.Qualify("", "notified_outbox"))
	require.Equal(t, `"s"."notified_outbox"`, migrations.Qualify("s", "notified_outbox"))
}

// TestMigrateOwnSchemaWithoutCreateOnDatabase: a role that owns its schema
// but may not create schemas in the database can migrate it.
func TestMigrateOwnSchemaWithoutCreateOnDatabase(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	ctx := context.Background()
	role := "r_" + db.Schema
	testdb.Exec(t, db.Pool, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{db.Schema + "_own"}.Sanitize()+" CASCADE")
		_, _ = db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})
	schema := db.Schema + "_own"
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+" AUTHORIZATION "+pgx.Identifier{role}.Sanitize())
	var canCreate bool
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", role).Scan(&canCreate))
	require.False(t, canCreate, "the role has no CREATE on the database")

	cfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.ConnConfig.User = role
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	res, err := migrations.Migrate(ctx, pool, schema)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3}, res.Versions)
}
