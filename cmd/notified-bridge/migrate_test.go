package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
)

// notifiedVersions returns the versions of notified's migrations, in order.
func notifiedVersions(t *testing.T) []int {
	t.Helper()
	all, err := migrations.All()
	require.NoError(t, err)
	vs := make([]int, len(all))
	for i, m := range all {
		vs[i] = m.Version
	}
	return vs
}

// schemaExists reports whether the schema exists.
func schemaExists(t *testing.T, db *testdb.DB, schema string) bool {
	t.Helper()
	return count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) == 1
}

// TestMigrateDryRunAndShowSQL: --dry-run says what migrate would apply,
// --show-sql prints its SQL, and neither changes anything; the SQL, applied
// as it is, leaves nothing for migrate to do.
func TestMigrateDryRunAndShowSQL(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	schema := db.Schema + "_new"
	t.Cleanup(func() { _, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
	all := notifiedVersions(t)

	out := mustRun(t, db, "--schema", schema, "migrate", "--dry-run")
	require.Regexp(t, fmt.Sprintf(`^schema %s \(to be created\): would apply \d+ River migration\(s\) \[1( \d+)*\] and %d notified migration\(s\) %s; nothing applied \(dry run\)\n$`,
		schema, len(all), strings.NewReplacer("[", `\[`, "]", `\]`).Replace(fmt.Sprint(all))), out)
	var plan struct {
		Schema        string `json:"schema"`
		DryRun        bool   `json:"dry_run"`
		CreateSchema  bool   `json:"create_schema"`
		RiverVersions []int  `json:"river_versions"`
		Versions      []int  `json:"versions"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "--schema", schema, "migrate", "--dry-run", "--json")), &plan))
	require.Equal(t, schema, plan.Schema)
	require.True(t, plan.DryRun)
	require.True(t, plan.CreateSchema)
	require.Equal(t, all, plan.Versions)
	require.NotEmpty(t, plan.RiverVersions)

	script := mustRun(t, db, "--schema", schema, "migrate", "--show-sql")
	require.Contains(t, script, `CREATE SCHEMA IF NOT EXISTS "`+schema+`";`)
	require.Contains(t, script, "-- River migration 001 (")
	for _, v := range all {
		require.Contains(t, script, fmt.Sprintf("-- notified migration %03d (", v))
	}
	require.False(t, schemaExists(t, db, schema), "--dry-run and --show-sql create nothing")

	testdb.Exec(t, db.Pool, script)
	require.Equal(t, "schema "+schema+": applied 0 River migration(s) [] and 0 notified migration(s) []\n", mustRun(t, db, "--schema", schema, "migrate"))
	require.Equal(t, "schema "+schema+": would apply 0 River migration(s) [] and 0 notified migration(s) []; nothing applied (dry run)\n",
		mustRun(t, db, "--schema", schema, "migrate", "--dry-run"))
	require.Equal(t, `-- schema "`+schema+`" is up to date: no migration to apply`+"\n", mustRun(t, db, "--schema", schema, "migrate", "--show-sql"))

	_, stderr, code := run(t, db, "migrate", "--show-sql", "--json")
	requireUserError(t, stderr, code, "migrate: --show-sql prints SQL, --json prints JSON: give one of them")
	_, stderr, code = run(t, db, "migrate", "--yes")
	requireUserError(t, stderr, code, "migrate: --yes confirms a --down: migrating up needs no confirmation")
	_, stderr, code = run(t, db, "migrate", "now")
	requireUserError(t, stderr, code, `migrate: unexpected argument "now": migrate takes no arguments`)
}

// TestMigrateDown: --down reverts notified's migrations above a version,
// and River's once notified's are reverted; it refuses without --yes,
// saying what it would drop; --dry-run and --show-sql change nothing.
func TestMigrateDown(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	all := notifiedVersions(t)
	first, newest := all[0], all[len(all)-1]
	above := slices.Clone(all[1:])
	slices.Reverse(above)
	current := func() int {
		v, err := migrations.Current(context.Background(), db.Pool, db.Schema)
		require.NoError(t, err)
		return v
	}

	_, stderr, code := run(t, db, "migrate", "--down", fmt.Sprint(first))
	requireUserError(t, stderr, code, fmt.Sprintf("migrate --down notified:%d would revert notified's migration(s) %v in schema %s, dropping their tables and every row in them", first, above, db.Schema),
		"add --yes to do it, or --dry-run / --show-sql to see what it runs")
	require.Equal(t, newest, current())

	out := mustRun(t, db, "migrate", "--down", fmt.Sprintf("notified:%d", first), "--dry-run")
	require.Equal(t, fmt.Sprintf("schema %s: would revert %d notified migration(s) %v, leaving version %d; nothing reverted (dry run)\n", db.Schema, len(above), above, first), out)
	out = mustRun(t, db, "migrate", "--down", "notified:0", "--show-sql")
	require.Contains(t, out, "DROP TABLE IF EXISTS notified_route;")
	require.Contains(t, out, fmt.Sprintf(`DELETE FROM "%s".notified_migration WHERE version = %d;`, db.Schema, first))
	require.Equal(t, newest, current(), "--dry-run and --show-sql revert nothing")

	_, stderr, code = run(t, db, "migrate", "--down", "river:1", "--yes")
	requireUserError(t, stderr, code, fmt.Sprintf("migrate --down river:1: notified's migrations use River's tables (version %d of notified's is applied in schema %s): revert notified's first (--down notified:0)", newest, db.Schema))

	out = mustRun(t, db, "migrate", "--down", fmt.Sprint(first), "--force")
	require.Equal(t, fmt.Sprintf("schema %s: reverted %d notified migration(s) %v, now at version %d\n", db.Schema, len(above), above, first), out)
	require.Equal(t, first, current())
	out = mustRun(t, db, "migrate", "--down", fmt.Sprint(first))
	require.Equal(t, fmt.Sprintf("schema %s: no notified migration above version %d: nothing to revert\n", db.Schema, first), out, "nothing to revert needs no --yes")

	var res struct {
		Line     string `json:"line"`
		Target   int    `json:"target"`
		Reverted []int  `json:"reverted"`
		DryRun   bool   `json:"dry_run"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "migrate", "--down", "notified:0", "--yes", "--json")), &res))
	require.Equal(t, "notified", res.Line)
	require.Equal(t, []int{first}, res.Reverted)
	require.False(t, res.DryRun)
	require.Zero(t, current())

	out = mustRun(t, db, "migrate", "--down", "river:0", "--yes")
	require.Regexp(t, `^schema `+db.Schema+`: reverted \d+ river migration\(s\) \[\d+( \d+)* 1\], now at version 0\n$`, out)
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename <> 'notified_migration'", db.Schema),
		"every table but notified's record of its migrations is gone")

	out = mustRun(t, db, "migrate")
	require.Contains(t, out, fmt.Sprintf("and %d notified migration(s) %v", len(all), all))

	for _, bad := range []string{"x:1", "notified:", "river:-1", "latest", "mysql:2"} {
		_, stderr, code := run(t, db, "migrate", "--down", bad)
		requireUserError(t, stderr, code, fmt.Sprintf("migrate: --down %q is not LINE:VERSION: use notified:VERSION (or VERSION) or river:VERSION, e.g. --down notified:1", bad))
	}
	_, stderr, code = run(t, db, "migrate", "--down", "notified:99", "--yes")
	requireUserError(t, stderr, code, fmt.Sprintf("migrate --down notified:99: notified has no migration 99: its versions are %v", all))
	_, stderr, code = run(t, db, "migrate", "--down", "river:999", "--yes")
	requireUserError(t, stderr, code, "migrate --down river:999: River has no migration 999: its versions are 1 to ")
}
