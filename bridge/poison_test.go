package bridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
)

// poisonRow is a row whose data cannot become River's jsonb args.
type poisonRow struct {
	name    string
	data    string // the json column's value
	sqlstat string // the SQLSTATE its insert fails with
}

var poisonRows = []poisonRow{
	{"NUL escape", `{"s": "\u0000"}`, "22P05"},
	{"lone surrogate", `{"s": "\ud800"}`, "22P02"},
	{"number beyond numeric", `{"n": 1e1000000}`, "22003"},
}

// poisonTable creates a table with a json column (which keeps its text as
// written, unlike jsonb) and installs the capture trigger on it.
func poisonTable(t *testing.T) *testBundle {
	t.Helper()
	db := testdb.New(t)
	table := db.Schema + ".poison"
	testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, name text, data json)")
	tb := setup(t, setupOpts{Table: table, DB: db})
	tb.Route(t, "ok", "k")
	tb.Route(t, "ok", "k2")
	return tb
}

// insertPoisoned inserts, in one transaction, good rows with each poison
// row between them, and returns the ids of the good and the bad ones.
func insertPoisoned(t *testing.T, tb *testBundle, good int) (goodIDs []string, bad map[string]poisonRow) {
	t.Helper()
	ctx := context.Background()
	tx, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	bad = map[string]poisonRow{}
	insertGood := func(n int) {
		rows, err := tx.Query(ctx, "INSERT INTO "+tb.Config.Table+" (name, data) SELECT 'ok', json_build_object('i', g) FROM generate_series(1, $1::int) g RETURNING id::text", n)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		goodIDs = append(goodIDs, ids...)
	}
	for _, p := range poisonRows {
		insertGood(good / (len(poisonRows) + 1))
		var id string
		require.NoError(t, tx.QueryRow(ctx, "INSERT INTO "+tb.Config.Table+" (name, data) VALUES ('ok', $1::json) RETURNING id::text", p.data).Scan(&id))
		bad[id] = p
	}
	insertGood(good / (len(poisonRows) + 1))
	require.NoError(t, tx.Commit(ctx))
	return goodIDs, bad
}

// TestPoisonRowsAreIsolatedAndNeighboursDispatched: rows whose data River's
// jsonb refuses are found in a batch of good rows, each recorded as rejected
// with a reason that names it and the database's error, and every good row
// of the batch is dispatched in the same drain; later events flow.
func TestPoisonRowsAreIsolatedAndNeighboursDispatched(t *testing.T) {
	t.Parallel()
	tb := poisonTable(t)
	goodIDs, bad := insertPoisoned(t, tb, 400)

	logs := &syncBuffer{}
	cfg := tb.Config
	cfg.Logger = jsonLogger(logs)
	b, sigs := tb.startWatched(t, cfg)
	total := len(goodIDs) + len(bad)
	tb.WaitRecorded(t, total)
	waitAccounted(t, sigs, total)

	got := tb.Outcomes(t)
	require.Len(t, got, total)
	want := map[string][]string{}
	for _, id := range goodIDs {
		require.Equal(t, "dispatched", got[id].Outcome, "good event %s", id)
		want[id] = []string{"k", "k2"}
	}
	for id, p := range bad {
		o := got[id]
		require.Equal(t, "rejected", o.Outcome, "%s: event %s", p.name, id)
		require.Contains(t, o.Reason, fmt.Sprintf("row %s of %s cannot become a job: ", id, tb.Config.Table), p.name)
		require.Contains(t, o.Reason, "(SQLSTATE "+p.sqlstat+")", p.name)
	}
	tb.requireExactlyOnce(t, want)
	require.Equal(t, int64(len(goodIDs)), b.Stats().Dispatched)
	require.Equal(t, int64(len(bad)), b.Stats().Rejected)

	// The channel flows: a new event is dispatched, and the bridge is ready.
	more := tb.insertEvents2(t, "ok")
	want[more] = []string{"k", "k2"}
	tb.WaitRecorded(t, total+1)
	waitAccounted(t, sigs, total+1)
	tb.requireExactlyOnce(t, want)
	r, err := b.Ready(context.Background())
	require.NoError(t, err, "readiness %+v", r)

	// Each bad event was logged with its id; no error was logged.
	logged := outcomeLogs(t, logs)
	for id := range bad {
		require.Len(t, logged[id], 1, "warning for event %s", id)
		require.Equal(t, "rejected", logged[id][0].Outcome)
	}
	require.Contains(t, logs.String(), "dispatching it in halves")
	requireNoErrorLogs(t, logs)
}

// TestPoisonRowAloneIsRejectedAtOnce: a batch of one bad event is recorded
// as rejected by the next dispatch transaction, not retried for ever.
func TestPoisonRowAloneIsRejectedAtOnce(t *testing.T) {
	t.Parallel()
	tb := poisonTable(t)
	var id string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		"INSERT INTO "+tb.Config.Table+" (name, data) VALUES ('ok', $1::json) RETURNING id::text", `["\u0000"]`).Scan(&id))
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	bridgetest.Start(t, b)
	tb.WaitRecorded(t, 1)
	o := tb.Outcomes(t)[id]
	require.Equal(t, "rejected", o.Outcome)
	require.True(t, strings.HasSuffix(o.Reason, "; fix the row and replay the event"), o.Reason)
	require.Empty(t, tb.jobsByEvent(t))
}

// insertEvents2 inserts one event of the given name into the bundle's table
// and returns its id.
func (tb *testBundle) insertEvents2(t testing.TB, name string) string {
	t.Helper()
	var id string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		"INSERT INTO "+tb.Config.Table+" (name) VALUES ($1) RETURNING id::text", name).Scan(&id))
	return id
}
