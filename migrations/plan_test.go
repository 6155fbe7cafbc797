package migrations_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
)

// TestPlanMigrateAppliesNothing: the plan of a fresh schema lists every
// migration of both lines, changes nothing, and its script, run as it is,
// leaves the schema where Migrate finds nothing to do.
func TestPlanMigrateAppliesNothing(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()
	schema := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true}).Schema + "_planned"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })

	p, err := migrations.PlanMigrate(ctx, pool, schema)
	require.NoError(t, err)
	require.Equal(t, schema, p.Schema)
	require.True(t, p.CreateSchema)
	require.Equal(t, allVersions(t), p.Versions(migrations.LineNotified))
	river := p.Versions(migrations.LineRiver)
	require.NotEmpty(t, river)
	require.Equal(t, 1, river[0])
	require.Equal(t, 0, testdb.Count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema), "a plan creates nothing")

	_, err = pool.Exec(ctx, p.Script())
	require.NoError(t, err)
	require.NoError(t, migrations.Check(ctx, pool, schema))
	res, err := migrations.Migrate(ctx, pool, schema)
	require.NoError(t, err)
	require.Empty(t, res.RiverVersions, "River finds its migrations recorded")
	require.Empty(t, res.Versions)

	p, err = migrations.PlanMigrate(ctx, pool, schema)
	require.NoError(t, err)
	require.False(t, p.CreateSchema)
	require.Empty(t, p.Steps)
	require.Contains(t, p.Script(), "is up to date: no migration to apply")
}

// TestDownNotifiedDryRunThenForReal: a dry run lists what Down would revert
// and changes nothing; the real one reverts it, its script is the same SQL,
// and River's line is refused while notified's migrations are applied.
func TestDownNotifiedDryRunThenForReal(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	all := allVersions(t)

	_, err := migrations.Down(ctx, db.Pool, db.Schema, migrations.LineRiver, 0, true)
	require.ErrorIs(t, err, migrations.ErrNotifiedUsesRiver)
	require.ErrorContains(t, err, "revert notified's first")

	dry, err := migrations.Down(ctx, db.Pool, db.Schema, migrations.LineNotified, 0, true)
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.Equal(t, reversed(all), dry.Versions())
	require.Contains(t, dry.Script(), "DROP TABLE IF EXISTS notified_route;")
	require.NoError(t, migrations.Check(ctx, db.Pool, db.Schema), "a dry run reverts nothing")

	res, err := migrations.Down(ctx, db.Pool, db.Schema, migrations.LineNotified, all[0], false)
	require.NoError(t, err)
	require.Equal(t, reversed(all[1:]), res.Versions())
	v, err := migrations.Current(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.Equal(t, all[0], v)

	_, err = migrations.Down(ctx, db.Pool, db.Schema, migrations.LineNotified, 999, false)
	require.EqualError(t, err, "notified has no migration 999: its versions are "+sprintInts(all))
	_, err = migrations.Down(ctx, db.Pool, db.Schema, migrations.LineNotified, -1, false)
	require.EqualError(t, err, "target version -1 is negative: give 0 to revert every migration")
	_, err = migrations.Down(ctx, db.Pool, db.Schema, "mysql", 0, false)
	require.EqualError(t, err, `migration line "mysql" is not notified or river`)
}

// TestDownRiver reverts River's migrations once notified's are reverted.
func TestDownRiver(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	_, err := migrations.DownNotified(ctx, db.Pool, db.Schema, 0)
	require.NoError(t, err)

	_, err = migrations.Down(ctx, db.Pool, db.Schema, migrations.LineRiver, 9999, false)
	require.ErrorContains(t, err, "River has no migration 9999: its versions are 1 to ")

	res, err := migrations.Down(ctx, db.Pool, db.Schema, migrations.LineRiver, 1, true)
	require.NoError(t, err)
	require.NotEmpty(t, res.Versions())
	require.NotContains(t, res.Versions(), 1)
	require.True(t, tableExists(t, db, "river_job"), "a dry run reverts nothing")

	res, err = migrations.Down(ctx, db.Pool, db.Schema, migrations.LineRiver, 0, false)
	require.NoError(t, err)
	require.Equal(t, 1, res.Versions()[len(res.Versions())-1])
	require.False(t, tableExists(t, db, "river_job"))
	require.False(t, tableExists(t, db, "river_migration"))

	res, err = migrations.Down(ctx, db.Pool, db.Schema, migrations.LineRiver, 0, false)
	require.NoError(t, err)
	require.Empty(t, res.Reverted, "nothing left to revert")

	up, err := migrations.Migrate(ctx, db.Pool, db.Schema)
	require.NoError(t, err)
	require.NotEmpty(t, up.RiverVersions)
	require.Equal(t, allVersions(t), up.Versions)
}

func sprintInts(vs []int) string { return fmt.Sprint(vs) }
