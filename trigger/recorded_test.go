package trigger_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

// dispatchAll does to the channel's outbox what a bridge's dispatch does to
// the records: it takes every row out and records each id, unrouted (no
// route in these tests), unless the id is recorded already.
func dispatchAll(t *testing.T, db *testdb.DB, channel string) {
	t.Helper()
	testdb.Exec(t, db.Pool, `WITH c AS (DELETE FROM `+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+` WHERE channel = $1 RETURNING event_id)
		INSERT INTO `+pgx.Identifier{db.Schema, "notified_dispatch"}.Sanitize()+` (channel, event_id, outcome, notified_at)
		SELECT DISTINCT $1, event_id, 'unrouted', now() FROM c
		ON CONFLICT DO NOTHING`, channel)
}

// record writes dispatch records of channel for ids, with outcome.
func record(t *testing.T, db *testdb.DB, channel, outcome string, ids ...string) {
	t.Helper()
	testdb.Exec(t, db.Pool, `INSERT INTO `+pgx.Identifier{db.Schema, "notified_dispatch"}.Sanitize()+` (channel, event_id, outcome, notified_at)
		SELECT $1, unnest($2::text[]), $3, now()`, channel, ids, outcome)
}

// recreate drops the table and creates it again with columns, in one
// transaction, as a migration tool might.
func recreate(t *testing.T, db *testdb.DB, table, columns string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DROP TABLE "+table); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "CREATE TABLE "+table+" ("+columns+")")
		return err
	}))
}

const eventsColumns = "id bigserial PRIMARY KEY, name text, payload jsonb, created_at timestamptz NOT NULL DEFAULT now()"

// installAndDispatch installs the trigger on the test's events table,
// inserts n events and records them as dispatched.
func installAndDispatch(t *testing.T, db *testdb.DB, n int) trigger.Options {
	t.Helper()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	_, err := trigger.Install(context.Background(), db.Pool, opts)
	require.NoError(t, err)
	for range n {
		insertEvent(t, db, db.Events())
	}
	dispatchAll(t, db, db.Channel)
	return opts
}

func dispatchRecord(t *testing.T, db *testdb.DB, channel, id string) (outcome string, at time.Time, ok bool) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), "SELECT outcome, dispatched_at FROM "+pgx.Identifier{db.Schema, "notified_dispatch"}.Sanitize()+
		" WHERE channel = $1 AND event_id = $2", channel, id).Scan(&outcome, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, false
	}
	require.NoError(t, err)
	return outcome, at, true
}

// TestInstallOnRecreatedTableIsRefused: the events table is dropped and
// created again while its channel keeps the dispatch records of ids 1-3.
// The new table's sequence starts again at 1, so its first three events
// would be skipped as already dispatched: Install refuses, says so, and
// names the restart that avoids it; with RestartSequence it restarts the
// sequence past them, and the new events are dispatched.
func TestInstallOnRecreatedTableIsRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := installAndDispatch(t, db, 3)
	recreate(t, db, db.Events(), eventsColumns)
	seq := pgx.Identifier{db.Schema, "events_id_seq"}.Sanitize()

	for name, try := range map[string]func() error{
		"Install": func() error { _, err := trigger.Install(ctx, db.Pool, opts); return err },
		"Plan":    func() error { _, err := trigger.Plan(ctx, db.Pool, opts); return err },
	} {
		err := try()
		require.ErrorIs(t, err, trigger.ErrRecordedIDs, name)
		var re *trigger.RecordedIDsError
		require.ErrorAs(t, err, &re, name)
		require.Equal(t, trigger.RecordedIDsError{Table: db.Events(), Channel: db.Channel, Sequence: seq,
			Next: 1, Count: 3, Restart: 4, CanRestart: true}, *re, name)
		require.ErrorContains(t, err, fmt.Sprintf(`channel %q already has dispatch records for 3 ids at or after 1, the next value of sequence %s of %s: rows that get them will be skipped as already dispatched.`,
			db.Channel, seq, db.Events()), name)
		require.ErrorContains(t, err, "Restart the sequence past them (Options.RestartSequence runs ALTER SEQUENCE "+seq+" RESTART WITH 4 in the install's transaction)", name)
		require.ErrorContains(t, err, "use a channel with no records (Options.Channel, the bridge's too), or install anyway (Options.AllowRecordedIDs)", name)
	}
	require.Zero(t, countTriggers(t, db, db.Events()), "nothing installed")

	opts.RestartSequence = true
	planned, err := trigger.Inspect(ctx, db.Pool, opts)
	require.NoError(t, err)
	r, err := trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Equal(t, planned, r, "Inspect says what Apply does")
	require.Equal(t, &trigger.SequenceRestart{Sequence: seq, Value: 4}, r.Restart)
	require.Empty(t, r.Warnings)
	require.Contains(t, r.SQL, "\nALTER SEQUENCE "+seq+" RESTART WITH 4;\n")
	require.Equal(t, "sequence "+seq+" restarted at 4", r.Restart.String())
	require.Equal(t, 1, countTriggers(t, db, db.Events()))

	require.Equal(t, "4", insertEvent(t, db, db.Events()), "the new table's ids start past the recorded ones")
	require.Equal(t, []string{"4"}, outbox(t, db, db.Channel))
	_, _, recorded := dispatchRecord(t, db, db.Channel, "4")
	require.False(t, recorded)
	dispatchAll(t, db, db.Channel)
	_, _, recorded = dispatchRecord(t, db, db.Channel, "4")
	require.True(t, recorded)

	// Installing again changes nothing more.
	r, err = trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Nil(t, r.Restart)
}

// TestRecreatedTableWithABridge plays the scenario with a real bridge: the
// events the old table's sequence numbers again are skipped as already
// dispatched when installed with AllowRecordedIDs, and dispatched when
// installed with RestartSequence.
func TestRecreatedTableWithABridge(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	_, err := trigger.Install(ctx, db.Pool, opts)
	require.NoError(t, err)
	outboxEmpty := func() (bool, string) {
		ids := outbox(t, db, db.Channel)
		return len(ids) == 0, fmt.Sprintf("outbox holds %v", ids)
	}
	runBridge := func() (stop func()) {
		b, err := bridge.New(ctx, db.Pool, bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
			PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		return bridgetest.Start(t, b)
	}

	stop := runBridge()
	for range 2 {
		insertEvent(t, db, db.Events())
	}
	testdb.WaitFor(t, 10*time.Second, outboxEmpty)
	stop()
	_, old, ok := dispatchRecord(t, db, db.Channel, "1")
	require.True(t, ok)

	recreate(t, db, db.Events(), eventsColumns)
	_, err = trigger.Install(ctx, db.Pool, opts)
	require.ErrorIs(t, err, trigger.ErrRecordedIDs)

	allowed := opts
	allowed.AllowRecordedIDs = true
	r, err := trigger.Apply(ctx, db.Pool, allowed)
	require.NoError(t, err)
	require.Len(t, r.Warnings, 1)
	require.Contains(t, r.Warnings[0], "already has dispatch records for 2 ids at or after 1")
	require.Contains(t, r.Warnings[0], "rows that get them will be skipped as already dispatched")
	stop = runBridge()
	require.Equal(t, "1", insertEvent(t, db, db.Events()))
	testdb.WaitFor(t, 10*time.Second, outboxEmpty)
	stop()
	_, at, _ := dispatchRecord(t, db, db.Channel, "1")
	require.Equal(t, old, at, "the new event 1 was skipped: its record is the old event's")

	restart := opts
	restart.RestartSequence = true
	r, err = trigger.Apply(ctx, db.Pool, restart)
	require.NoError(t, err)
	require.Equal(t, int64(3), r.Restart.Value)
	runBridge()
	require.Equal(t, "3", insertEvent(t, db, db.Events()))
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		outcome, _, ok := dispatchRecord(t, db, db.Channel, "3")
		return ok, fmt.Sprintf("event 3 recorded: %v %s", ok, outcome)
	})
}

// TestReinstallOnTheSameTableIsNotRefused: a re-install, on the table whose
// events the records are of, finds the sequence past them.
func TestReinstallOnTheSameTableIsNotRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := installAndDispatch(t, db, 3)
	insertEvent(t, db, db.Events()) // waiting in the outbox
	// Hand-sent NOTIFYs of ids ahead: a missing record does not count, the
	// bridge replaces it when the row appears.
	record(t, db, db.Channel, "missing", "100", "101")

	for _, o := range []trigger.Options{opts, {Schema: db.Schema, Table: db.Events(), Channel: db.Channel, RestartSequence: true}} {
		r, err := trigger.Apply(ctx, db.Pool, o)
		require.NoError(t, err)
		require.Nil(t, r.Restart)
		require.Empty(t, r.Warnings)
	}
	require.Equal(t, "5", insertEvent(t, db, db.Events()))
}

// TestTruncateRestartIdentityIsRefused: the trigger survives TRUNCATE, but
// RESTART IDENTITY sends the sequence back over the recorded ids.
func TestTruncateRestartIdentityIsRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	opts := installAndDispatch(t, db, 2)
	testdb.Exec(t, db.Pool, "TRUNCATE "+db.Events()+" RESTART IDENTITY")
	_, err := trigger.Install(context.Background(), db.Pool, opts)
	require.ErrorIs(t, err, trigger.ErrRecordedIDs)
	require.ErrorContains(t, err, "dispatch records for 2 ids at or after 1")
}

// TestRecreatedTableWithUUIDsIsNotRefused: uuid ids do not repeat.
func TestRecreatedTableWithUUIDsIsNotRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	const columns = "id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, payload jsonb"
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" ("+columns+")")
	opts := installAndDispatch(t, db, 3)
	require.Equal(t, 3, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_dispatch"}.Sanitize()))
	recreate(t, db, db.Events(), columns)

	r, err := trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Nil(t, r.Restart)
	require.Empty(t, r.Warnings)
	requireCaptured(t, db, db.Events(), db.Channel)
}

// TestRecreatedTableWithUnpredictableIDsWarns: for text ids, and integers
// no sequence numbers, notified cannot tell which ids the table will
// produce: installing the trigger anew on a table whose channel has
// records warns; installing it again on the same table does not.
func TestRecreatedTableWithUnpredictableIDsWarns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, columns, unknown string }{
		{"text", "id text PRIMARY KEY, name text", `its id column "id" is text`},
		{"varchar", "id varchar(20) PRIMARY KEY, name text", `its id column "id" is character varying(20)`},
		{"integer without a sequence", "id bigint PRIMARY KEY, name text", `its id column "id" has no sequence`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			ctx := context.Background()
			testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" ("+tc.columns+")")
			opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
			r, err := trigger.Apply(ctx, db.Pool, opts)
			require.NoError(t, err)
			require.Empty(t, r.Warnings, "no records yet")
			testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+" (id, name) VALUES ('1', 'a'), ('2', 'b')")
			dispatchAll(t, db, db.Channel)
			record(t, db, db.Channel, "missing", "3") // not counted

			r, err = trigger.Apply(ctx, db.Pool, opts)
			require.NoError(t, err)
			require.Empty(t, r.Warnings, "the trigger is on this table already")

			recreate(t, db, db.Events(), tc.columns)
			r, err = trigger.Apply(ctx, db.Pool, opts)
			require.NoError(t, err, "installed, with a warning")
			require.Equal(t, []string{fmt.Sprintf(
				"channel %q already has dispatch records for 2 ids, and the trigger was not on %s until now: a new row whose id is one of them will be skipped as already dispatched. "+
					"notified cannot tell which ids %s will produce: %s. If the table was created again and its ids may repeat, install on a channel with no records",
				db.Channel, db.Events(), db.Events(), tc.unknown)}, r.Warnings)
			require.Equal(t, 1, countTriggers(t, db, db.Events()))
		})
	}
}

// TestDescendingSequenceNamedByTheDefault: a sequence the column does not
// own, named in its default, counting down.
func TestDescendingSequenceNamedByTheDefault(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	seq := pgx.Identifier{db.Schema, "countdown"}.Sanitize()
	testdb.Exec(t, db.Pool, "CREATE SEQUENCE "+seq+" INCREMENT BY -1")
	columns := "id bigint PRIMARY KEY DEFAULT nextval(" + quote(seq) + "), name text, payload jsonb"
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" ("+columns+")")
	opts := installAndDispatch(t, db, 3)
	recreate(t, db, db.Events(), columns)
	testdb.Exec(t, db.Pool, "ALTER SEQUENCE "+seq+" RESTART")

	_, err := trigger.Install(ctx, db.Pool, opts)
	var re *trigger.RecordedIDsError
	require.ErrorAs(t, err, &re)
	require.Equal(t, trigger.RecordedIDsError{Table: db.Events(), Channel: db.Channel, Sequence: seq,
		Next: -1, Descending: true, Count: 3, Restart: -4, CanRestart: true}, *re)
	require.ErrorContains(t, err, "dispatch records for 3 ids at or before -1")

	opts.RestartSequence = true
	_, err = trigger.Install(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Equal(t, "-4", insertEvent(t, db, db.Events()))
}

// TestSequenceThatCannotGoPastTheRecordedIDs: a smallint sequence whose
// last value is recorded has nowhere to restart.
func TestSequenceThatCannotGoPastTheRecordedIDs(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" (id smallserial PRIMARY KEY, name text, payload jsonb)")
	record(t, db, db.Channel, "dispatched", "5", "32767", "40000", "abc", "007")

	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel, RestartSequence: true}
	_, err := trigger.Install(ctx, db.Pool, opts)
	var re *trigger.RecordedIDsError
	require.ErrorAs(t, err, &re)
	require.Equal(t, int64(2), re.Count, "5 and 32767: 40000 is beyond the sequence, abc and 007 are not integer keys")
	require.False(t, re.CanRestart)
	require.ErrorContains(t, err, "The sequence cannot be restarted past them without going beyond its limit: use a channel with no records")
	require.Zero(t, countTriggers(t, db, db.Events()))

	opts.RestartSequence, opts.AllowRecordedIDs = false, true
	r, err := trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Len(t, r.Warnings, 1)
}

func TestRestartSequenceAndAllowRecordedIDsExcludeEachOther(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
		RestartSequence: true, AllowRecordedIDs: true})
	require.ErrorContains(t, err, "Options.RestartSequence and Options.AllowRecordedIDs exclude each other")
	require.Zero(t, countTriggers(t, db, db.Events()))
}

// TestInstallerThatMayNotReadTheSequenceIsWarned: an installer with the
// rights install-trigger needs but none on the table's sequence cannot
// compare it with the records.
func TestInstallerThatMayNotReadTheSequenceIsWarned(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	installer := loginRole(t, db, "installer")
	role, schema := pgx.Identifier{installer}.Sanitize(), pgx.Identifier{db.Schema}.Sanitize()
	testdb.Exec(t, db.Pool, "GRANT USAGE, CREATE ON SCHEMA "+schema+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT SELECT ON ALL TABLES IN SCHEMA "+schema+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT INSERT ON "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT TRIGGER ON "+db.Events()+" TO "+role)
	testdb.Exec(t, db.Pool, "REVOKE ALL ON SEQUENCE "+pgx.Identifier{db.Schema, "events_id_seq"}.Sanitize()+" FROM "+role)
	record(t, db, db.Channel, "dispatched", "1", "2")

	conn := connectAs(t, db, installer)
	r, err := trigger.Apply(ctx, conn, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	require.Len(t, r.Warnings, 1)
	seq := pgx.Identifier{db.Schema, "events_id_seq"}.Sanitize()
	require.Contains(t, r.Warnings[0], fmt.Sprintf("role %q may not read its sequence %s (GRANT SELECT ON SEQUENCE %s TO %s lets this check run)",
		installer, seq, seq, role))
	requireCaptured(t, db, db.Events(), db.Channel)
}
