package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

// TestUninstallTrigger removes the capture trigger and its function, says
// so, and is idempotent; --json says the same.
func TestUninstallTrigger(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	trg := trigger.Name(trigger.Options{Table: db.Events(), Channel: db.Channel})
	captureTriggers := func() int {
		return count(t, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'notified_capture_%'", tbl(db, "events"))
	}
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 1, captureTriggers())

	out := mustRun(t, db, "uninstall-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, fmt.Sprintf("capture trigger %s removed from %s (channel %q): inserts no longer record outbox rows for the bridge\nfunction %s.%s() removed\n",
		trg, db.Events(), db.Channel, db.Schema, trg), out)
	require.Zero(t, captureTriggers())
	insertEvent(t, db, "user_signed_up", `{}`)
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))

	out = mustRun(t, db, "uninstall-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, fmt.Sprintf("no capture trigger for channel %q on %s, nor its function %s.%s(): nothing to remove\n",
		db.Channel, db.Events(), db.Schema, trg), out)

	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel+"_2")
	var r trigger.Removal
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "uninstall-trigger", "--table", db.Events(), "--channel", db.Channel, "--json")), &r))
	require.Equal(t, trigger.Removal{Trigger: trg, Table: db.Events(), TriggerRemoved: true, Function: db.Schema + "." + trg + "()",
		FunctionRemoved: true, FunctionUsers: []string{}, OtherCaptureTriggers: []string{trigger.Name(trigger.Options{Table: db.Events(), Channel: db.Channel + "_2"})}}, r)
	out = mustRun(t, db, "uninstall-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Contains(t, out, "left on "+db.Events()+": capture trigger(s) notified_capture_")
	require.Contains(t, out, "for another channel or id column (give their --channel and --id-field to remove them)\n")

	_, stderr, code := run(t, db, "uninstall-trigger", "--table", db.Schema+".no_such_table.x")
	requireUserError(t, stderr, code, "uninstall trigger from "+db.Schema+".no_such_table.x:")
	_, stderr, code = run(t, db, "uninstall-trigger", "events")
	requireUserError(t, stderr, code, `uninstall-trigger: unexpected argument "events": the table goes in --table`)
}

// TestInstallTriggerWarnsAboutAnOlderNotifyTrigger: install-trigger on a
// table whose notify-only trigger from before notified notifies the same
// channel installs, and warns on one line of standard error how to drop
// the old trigger; setup warns the same.
func TestInstallTriggerWarnsAboutAnOlderNotifyTrigger(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	testdb.Exec(t, db.Pool, "CREATE FUNCTION "+tbl(db, "notify_event")+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('"+
		db.Channel+"', NEW.id::text); RETURN NEW; END $$")
	testdb.Exec(t, db.Pool, "CREATE TRIGGER events_notify AFTER INSERT ON "+tbl(db, "events")+" FOR EACH ROW EXECUTE FUNCTION "+tbl(db, "notify_event")+"()")
	warning := fmt.Sprintf("warning: table %s also has trigger \"events_notify\" (function %s.notify_event()), which calls pg_notify on channel %q: "+
		"with the capture trigger each insert sends two notifications (harmless, the bridge deduplicates, but twice the traffic); "+
		"once nothing else listens for its notifications, drop it: DROP TRIGGER \"events_notify\" ON %s;\n", db.Events(), db.Schema, db.Channel, tbl(db, "events"))

	out, stderr, code := run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "installed on "+db.Events())
	require.Equal(t, warning, stderr)

	out, stderr, code = run(t, db, "install-trigger", "--print", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "CREATE OR REPLACE TRIGGER")
	require.Equal(t, warning, stderr)

	_, stderr, code = run(t, db, "setup", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, warning, stderr)

	testdb.Exec(t, db.Pool, "DROP TRIGGER events_notify ON "+tbl(db, "events"))
	_, stderr, code = run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
}
