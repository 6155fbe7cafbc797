package trigger_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

// functionExists reports whether the capture function trg exists in the
// test's schema.
func functionExists(t *testing.T, db *testdb.DB, trg string) bool {
	t.Helper()
	return testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_proc WHERE proname = $1 AND pronamespace = $2::regnamespace", trg, db.Schema) == 1
}

// TestUninstall removes the trigger and its function, after which inserts
// are not captured; again, it removes nothing; the capture trigger of
// another channel is left, and named.
func TestUninstall(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	other := opts
	other.Channel = db.Channel + "_other"
	_, err := trigger.Install(ctx, db.Pool, opts)
	require.NoError(t, err)
	_, err = trigger.Install(ctx, db.Pool, other)
	require.NoError(t, err)
	trg, otherTrg := trigger.Name(opts), trigger.Name(other)

	r, err := trigger.Uninstall(ctx, db.Pool, opts)
	require.NoError(t, err)
	fn := db.Schema + "." + trg + "()"
	require.Equal(t, &trigger.Removal{Trigger: trg, Table: db.Events(), TriggerRemoved: true, Function: fn, FunctionRemoved: true,
		FunctionUsers: []string{}, OtherCaptureTriggers: []string{otherTrg},
		SQL: fmt.Sprintf("DROP TRIGGER %s ON %s;\nDROP FUNCTION %s();\n", pgx.Identifier{trg}.Sanitize(),
			pgx.Identifier{db.Schema, "events"}.Sanitize(), pgx.Identifier{db.Schema, trg}.Sanitize())}, r)
	require.False(t, functionExists(t, db, trg))
	require.True(t, functionExists(t, db, otherTrg))
	insertEvent(t, db, pgx.Identifier{db.Schema, "events"}.Sanitize())
	require.Empty(t, outbox(t, db, db.Channel), "an insert is no longer captured for the channel")
	require.Len(t, outbox(t, db, other.Channel), 1, "the other channel's trigger is left")

	r, err = trigger.Uninstall(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.False(t, r.TriggerRemoved)
	require.False(t, r.FunctionRemoved)
	require.Empty(t, r.SQL)
}

// TestUninstallKeepsAFunctionInUse: a function another trigger calls is
// kept, and that trigger named.
func TestUninstallKeepsAFunctionInUse(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	_, err := trigger.Install(ctx, db.Pool, opts)
	require.NoError(t, err)
	trg := trigger.Name(opts)
	testdb.Exec(t, db.Pool, "CREATE TABLE "+pgx.Identifier{db.Schema, "more_events"}.Sanitize()+" (id bigserial PRIMARY KEY, name text, payload jsonb)")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER reuse AFTER INSERT ON "+pgx.Identifier{db.Schema, "more_events"}.Sanitize()+
		" FOR EACH ROW EXECUTE FUNCTION "+pgx.Identifier{db.Schema, trg}.Sanitize()+"()")

	r, err := trigger.Uninstall(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.True(t, r.TriggerRemoved)
	require.False(t, r.FunctionRemoved)
	require.Equal(t, []string{db.Schema + ".more_events.reuse"}, r.FunctionUsers)
	require.True(t, functionExists(t, db, trg))
}

// TestUninstallAfterTheTableWasDropped removes the function the dropped
// table's trigger left, for a qualified table and for one found through
// the search_path.
func TestUninstallAfterTheTableWasDropped(t *testing.T) {
	t.Parallel()
	for _, qualified := range []bool{true, false} {
		t.Run(fmt.Sprint("qualified=", qualified), func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t)
			ctx := context.Background()
			opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
			_, err := trigger.Install(ctx, db.Pool, opts)
			require.NoError(t, err)
			trg := trigger.Name(opts)
			testdb.Exec(t, db.Pool, "DROP TABLE "+pgx.Identifier{db.Schema, "events"}.Sanitize())
			var conn dbtx.Beginner = db.Pool
			if !qualified {
				opts.Table, opts.Schema = "events", ""
				conn = testdb.SearchPathConn(t, db)
			}
			r, err := trigger.Uninstall(ctx, conn, opts)
			require.NoError(t, err)
			require.False(t, r.TriggerRemoved)
			require.True(t, r.FunctionRemoved)
			require.False(t, functionExists(t, db, trg))
		})
	}
}

// TestInstallWarnsAboutAnotherNotifyTrigger: a notify-only trigger of the
// table on the same channel, from before notified, is reported with how to
// drop it; triggers that would not notify the channel on an insert are not.
func TestInstallWarnsAboutAnotherNotifyTrigger(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	events := pgx.Identifier{db.Schema, "events"}.Sanitize()
	fn := func(name, body string) string {
		q := pgx.Identifier{db.Schema, name}.Sanitize()
		testdb.Exec(t, db.Pool, "CREATE FUNCTION "+q+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "+body+" RETURN NEW; END $$")
		return q
	}
	literal := fn("notify_literal", "PERFORM pg_notify('"+db.Channel+"', NEW.id::text);")
	byArg := fn("notify_arg", "PERFORM pg_notify(TG_ARGV[0], NEW.id::text);")
	otherChannel := fn("notify_other", "PERFORM pg_notify('"+db.Channel+"x', NEW.id::text);")
	noNotify := fn("no_notify", "/* '"+db.Channel+"' */ NULL;")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER old_notify AFTER INSERT ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+literal+"()")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER by_arg AFTER INSERT ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+byArg+"('"+db.Channel+"')")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER on_update AFTER UPDATE ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+literal+"()")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER disabled AFTER INSERT ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+literal+"()")
	testdb.Exec(t, db.Pool, "ALTER TABLE "+events+" DISABLE TRIGGER disabled")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER other_channel AFTER INSERT ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+otherChannel+"()")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER no_notify AFTER INSERT ON "+events+" FOR EACH ROW EXECUTE FUNCTION "+noNotify+"()")

	want := func(trg, function string) string {
		return fmt.Sprintf("table %s also has trigger %s (function %s), which calls pg_notify on channel %q: "+
			"with the capture trigger each insert sends two notifications (harmless, the bridge deduplicates, but twice the traffic); "+
			"once nothing else listens for its notifications, drop it: DROP TRIGGER %s ON %s;", db.Events(), trg, function, db.Channel, trg, events)
	}
	wants := []string{want(`"by_arg"`, db.Schema+".notify_arg()"), want(`"old_notify"`, db.Schema+".notify_literal()")}
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	r, err := trigger.Inspect(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Equal(t, wants, r.Warnings)
	r, err = trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Equal(t, wants, r.Warnings)

	testdb.Exec(t, db.Pool, "DROP TRIGGER old_notify ON "+events+"; DROP TRIGGER by_arg ON "+events)
	r, err = trigger.Apply(ctx, db.Pool, opts)
	require.NoError(t, err)
	require.Empty(t, r.Warnings, "a reinstall does not warn about the capture trigger itself")
}
