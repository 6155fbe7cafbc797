package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/trigger"
)

// waitNotReady waits until the bridge reports a reason containing want.
func waitNotReady(t *testing.T, b *bridge.Bridge, want string) {
	t.Helper()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		r, err := b.Ready(context.Background())
		if err == nil {
			return false, "ready"
		}
		for _, reason := range r.Reasons {
			if strings.Contains(reason, want) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("reasons %q", r.Reasons)
	})
}

// waitReady waits until the bridge is ready.
func waitReady(t *testing.T, b *bridge.Bridge) {
	t.Helper()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		r, err := b.Ready(context.Background())
		return err == nil, fmt.Sprintf("reasons %q", r.Reasons)
	})
}

// TestRecreatedTableIsReportedUntilItsTriggerIsInstalled: a table dropped
// and created again under a running bridge has no capture trigger; the
// bridge logs it once, is not ready, shows it in its metric, and follows the
// new table once the trigger is installed.
func TestRecreatedTableIsReportedUntilItsTriggerIsInstalled(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "ok", "k")
	b, logs := tb.startLogged(t)
	first := tb.InsertEvents(t, "ok")
	tb.WaitRecorded(t, 1)
	waitReady(t, b)

	table := tb.DB.Events()
	testdb.Exec(t, tb.DB.Pool, "BEGIN; DROP TABLE "+table+"; CREATE TABLE "+table+
		" (id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000) PRIMARY KEY, name text, payload jsonb); COMMIT")
	waitNotReady(t, b, "has no enabled capture trigger for channel")
	require.Equal(t, 0.0, gauge(t, b, "notified_events_table_ok"))

	_, err := trigger.Install(context.Background(), tb.DB.Pool, trigger.Options{Schema: tb.DB.Schema, Table: table, Channel: tb.DB.Channel})
	require.NoError(t, err)
	second := tb.InsertEvents(t, "ok")
	tb.WaitRecorded(t, 2)
	tb.requireExactlyOnce(t, map[string][]string{first[0]: {"k"}, second[0]: {"k"}})
	waitReady(t, b)
	require.Equal(t, 1.0, gauge(t, b, "notified_events_table_ok"))

	var problems int
	for _, rec := range logRecords(t, logs.String()) {
		if rec["msg"] == "events table problem" {
			problems++
			require.Equal(t, "ERROR", rec["level"])
		}
	}
	require.Equal(t, 1, problems, "the problem is logged once, not at every poll")
	require.Contains(t, logs.String(), "events table was dropped and created again")
	require.Contains(t, logs.String(), "events table problem resolved")
}

// TestDroppedTableMakesTheBridgeNotReady: with its table gone, the bridge
// says so on /readyz and keeps the outbox for when it is back.
func TestDroppedTableMakesTheBridgeNotReady(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b := tb.Start(t, nil, tb.Config)
	waitReady(t, b)
	testdb.Exec(t, tb.DB.Pool, "DROP TABLE "+tb.DB.Events())
	waitNotReady(t, b, "does not exist (dropped or renamed?)")
}

// TestIDColumnTypeChangeIsFollowedWithoutRestart: after ALTER COLUMN id TYPE
// text under a running bridge, text ids and numeric ones are dispatched,
// none rejected for the old picture of the table.
func TestIDColumnTypeChangeIsFollowedWithoutRestart(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "ok", "k")
	b, logs := tb.startLogged(t)
	before := tb.InsertEvents(t, "ok")
	tb.WaitRecorded(t, 1)

	table := tb.DB.Events()
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+table+" ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id TYPE text")
	// As the bridge's warning says: sessions that ran the trigger before
	// keep plans for the old type until its function is replaced.
	_, err := trigger.Install(context.Background(), tb.DB.Pool, trigger.Options{Schema: tb.DB.Schema, Table: table, Channel: tb.DB.Channel})
	require.NoError(t, err)
	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+table+" (id, name) VALUES ('order-7', 'ok'), ('12345', 'ok')")
	tb.WaitRecorded(t, 3)
	got := tb.Outcomes(t)
	for _, id := range []string{before[0], "order-7", "12345"} {
		require.Equal(t, "dispatched", got[id].Outcome, "event %s: %+v", id, got[id])
	}
	tb.requireExactlyOnce(t, map[string][]string{before[0]: {"k"}, "order-7": {"k"}, "12345": {"k"}})
	require.Contains(t, logs.String(), "events table's id column changed type")
	requireNoErrorLogs(t, logs)
	require.Equal(t, int64(0), b.Stats().Rejected)
	waitReady(t, b)
}

// gauge reads one of the bridge's metrics.
func gauge(t *testing.T, b *bridge.Bridge, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(b))
	v, ok := metricValue(t, reg, name, nil)
	require.True(t, ok, "metric %s", name)
	return v
}

// TestNewRefusesSystemTablesAndLookalikeTypes: an unqualified name that
// Postgres resolves to one of its own tables is refused, and so is an id
// column whose type only has the name of a supported one.
func TestNewRefusesSystemTablesAndLookalikeTypes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	_, err := bridge.New(ctx, db.Pool, bridge.Config{Schema: db.Schema, Table: "pg_class", IDColumn: "oid", NameColumn: "relname", Channel: db.Channel})
	require.ErrorIs(t, err, migrations.ErrSystemSchema)
	require.ErrorContains(t, err, "pg_class is pg_catalog.pg_class, a table of Postgres itself")

	testdb.Exec(t, db.Pool, "CREATE TYPE "+db.Schema+".int8 AS (v bigint)")
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Schema+".lookalike (id "+db.Schema+".int8, name text)")
	_, err = bridge.New(ctx, db.Pool, bridge.Config{Schema: db.Schema, Table: db.Schema + ".lookalike", Channel: db.Channel})
	require.ErrorIs(t, err, bridge.ErrIDType)
}

// TestNoCaptureTriggerIsReadyWithoutTheTrigger: a table announced without
// the capture trigger (publish, notify) is not a problem when the bridge is
// told so.
func TestNoCaptureTriggerIsReadyWithoutTheTrigger(t *testing.T) {
	t.Parallel()
	tb := setup(t, setupOpts{NoTrigger: true})
	cfg := tb.Config
	cfg.NoCaptureTrigger = true
	b := tb.Start(t, nil, cfg)
	waitReady(t, b)
	require.Equal(t, 1.0, gauge(t, b, "notified_events_table_ok"))
}
