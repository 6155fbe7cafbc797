package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestInstallTriggerOnRecreatedTable: the events table is dropped and
// created again while its channel keeps the dispatch records of ids 1 and
// 2. install-trigger refuses, naming the sequence, the restart and its
// flags; --restart-sequence restarts the sequence past the records in the
// install's transaction; --allow-recorded-ids installs with a warning.
func TestInstallTriggerOnRecreatedTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	triggers := func() int {
		return count(t, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", tbl(db, "events"))
	}
	seq := tbl(db, "events_id_seq")
	nextID := func() int64 {
		var last int64
		var called bool
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT last_value, is_called FROM "+seq).Scan(&last, &called))
		if called {
			return last + 1
		}
		return last
	}

	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	insertEvent(t, db, "user_signed_up", `{}`)
	insertEvent(t, db, "user_signed_up", `{}`)
	// What a bridge's dispatch leaves: the outbox drained, one record per id.
	testdb.Exec(t, db.Pool, `WITH c AS (DELETE FROM `+tbl(db, "notified_outbox")+` WHERE channel = $1 RETURNING event_id)
		INSERT INTO `+tbl(db, "notified_dispatch")+` (channel, event_id, outcome, notified_at) SELECT $1, event_id, 'unrouted', now() FROM c`, db.Channel)
	require.NoError(t, pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "DROP TABLE "+tbl(db, "events")+"; CREATE TABLE "+tbl(db, "events")+
			" (id bigserial PRIMARY KEY, name text, payload jsonb, created_at timestamptz NOT NULL DEFAULT now())")
		return err
	}))

	refusal := []string{
		fmt.Sprintf(`install trigger on %s: ids the events table will produce are already recorded for the channel: channel %q already has dispatch records for 2 ids at or after 1, the next value of sequence %s of %s: rows that get them will be skipped as already dispatched.`,
			db.Events(), db.Channel, seq, db.Events()),
		"Restart the sequence past them (--restart-sequence runs ALTER SEQUENCE " + seq + " RESTART WITH 3 in the install's transaction), " +
			"use a channel with no records (--channel, the bridge's too), or install anyway (--allow-recorded-ids)",
	}
	_, stderr, code := run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	requireUserError(t, stderr, code, refusal...)
	require.NotContains(t, stderr, "Options.")
	_, stderr, code = run(t, db, "install-trigger", "--print", "--table", db.Events(), "--channel", db.Channel)
	requireUserError(t, stderr, code, refusal[1:]...)
	_, stderr, code = run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel, "--restart-sequence", "--allow-recorded-ids")
	requireUserError(t, stderr, code, "--restart-sequence and --allow-recorded-ids exclude each other")
	require.Zero(t, triggers())

	// --print shows the restart, and runs nothing.
	out := mustRun(t, db, "install-trigger", "--print", "--table", db.Events(), "--channel", db.Channel, "--restart-sequence")
	require.True(t, strings.HasSuffix(out, "\nALTER SEQUENCE "+seq+" RESTART WITH 3;\n"), out)
	require.Zero(t, triggers())
	require.Equal(t, int64(1), nextID())

	var res map[string]string
	out = mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel, "--restart-sequence", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Equal(t, seq, res["restarted_sequence"])
	require.Equal(t, "3", res["restarted_at"])
	require.Equal(t, 1, triggers())
	require.Equal(t, int64(3), insertEvent(t, db, "user_signed_up", `{}`))

	out = mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel, "--restart-sequence")
	require.NotContains(t, out, "restarted", "nothing to restart any more")

	// TRUNCATE ... RESTART IDENTITY sends the sequence back too.
	testdb.Exec(t, db.Pool, "TRUNCATE "+tbl(db, "events")+" RESTART IDENTITY")
	out, stderr, code = run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel, "--allow-recorded-ids")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "installed on "+db.Events())
	require.Equal(t, fmt.Sprintf("warning: channel %q already has dispatch records for 2 ids at or after 1, the next value of sequence %s of %s: rows that get them will be skipped as already dispatched\n",
		db.Channel, seq, db.Events()), stderr)
}
