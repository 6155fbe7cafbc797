package trigger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/trigger"
)

// suffix is the random tail of the test's schema name, to make channel names
// no other test (in any package) uses: NOTIFY is database-wide.
func suffix(db *testdb.DB) string {
	return db.Schema[strings.LastIndexByte(db.Schema, '_')+1:]
}

// outbox returns the outbox rows of channel, as event ids in seq order.
func outbox(t *testing.T, db *testdb.DB, channel string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(),
		"SELECT event_id FROM "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+" WHERE channel = $1 ORDER BY seq", channel)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

// insertEvent inserts a row into table (an already quoted name) and returns
// its id as text.
func insertEvent(t *testing.T, db *testdb.DB, table string) string {
	t.Helper()
	var id string
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"INSERT INTO "+table+" (name, payload) VALUES ('user_signed_up', '{}') RETURNING id::text").Scan(&id))
	return id
}

// requireCaptured inserts into the events table and checks that exactly one
// outbox row and one notification on channel carry the new id.
func requireCaptured(t *testing.T, db *testdb.DB, table, channel string) {
	t.Helper()
	conn := testdb.Listen(t, db, channel)
	before := len(outbox(t, db, channel))
	id := insertEvent(t, db, table)
	n := testdb.NextNotification(t, conn)
	require.Equal(t, channel, n.Channel)
	require.Equal(t, id, n.Payload)
	ids := outbox(t, db, channel)
	require.Len(t, ids, before+1)
	require.Equal(t, id, ids[len(ids)-1])
}

func countTriggers(t *testing.T, db *testdb.DB, table string) int {
	t.Helper()
	return testdb.Count(t, db.Pool,
		"SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname LIKE 'notified_capture_%' AND NOT tgisinternal", table)
}

func TestSQL(t *testing.T) {
	t.Parallel()
	sql, err := trigger.SQL(trigger.Options{Schema: "notified", Table: "app.events", Channel: "events", IDColumn: "id"})
	require.NoError(t, err)
	name := trigger.Name(trigger.Options{Table: "app.events", Channel: "events", IDColumn: "id"})

	require.Contains(t, sql, `AFTER INSERT ON "app"."events"`)
	require.Contains(t, sql, `IF pg_catalog.pg_typeof(NEW."id")::pg_catalog.oid NOT IN (21, 23, 20, 25, 1043, 2950) THEN`)
	require.Contains(t, sql, `notified_id := NEW."id"::pg_catalog.text;`)
	require.Contains(t, sql, `INSERT INTO "notified"."notified_outbox" (channel, event_id) VALUES ('events', notified_id);`)
	require.Contains(t, sql, `PERFORM pg_catalog.pg_notify('events', notified_id);`)
	require.Less(t, strings.Index(sql, "pg_typeof"), strings.Index(sql, "::pg_catalog.text;"), "the type is checked before the id is converted")
	require.Contains(t, sql, `CREATE OR REPLACE FUNCTION "notified"."`+name+`"() RETURNS trigger`)
	require.Contains(t, sql, `CREATE OR REPLACE TRIGGER "`+name+`"`)
	require.Contains(t, sql, "FOR EACH ROW EXECUTE FUNCTION")
	require.Contains(t, sql, "$notified$")
}

func TestSQLDefaults(t *testing.T) {
	t.Parallel()
	sql, err := trigger.SQL(trigger.Options{Schema: "s"})
	require.NoError(t, err)
	require.Contains(t, sql, `AFTER INSERT ON "events"`)
	require.Contains(t, sql, `notified_id := NEW."id"::pg_catalog.text;`)
	require.Contains(t, sql, `PERFORM pg_catalog.pg_notify('events', notified_id);`)
	require.Contains(t, sql, `INSERT INTO "s"."notified_outbox"`)

	explicit, err := trigger.SQL(trigger.Options{Schema: "s", Table: bridge.DefaultTable, Channel: bridge.DefaultChannel, IDColumn: bridge.DefaultIDColumn})
	require.NoError(t, err)
	require.Equal(t, explicit, sql)
}

func TestSQLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    trigger.Options
		wantErr string
	}{
		{"no schema", trigger.Options{Table: "events"}, "trigger SQL needs a resolved schema"},
		{"invalid schema", trigger.Options{Schema: "bad-name"}, `Schema "bad-name" is not valid`},
		{"table with two dots", trigger.Options{Schema: "s", Table: "a.b.c"}, `events table name "a.b.c" has more than one dot`},
		{"table with an empty part", trigger.Options{Schema: "s", Table: "a."}, `events table name "a." has an empty part`},
		{"blank table", trigger.Options{Schema: "s", Table: "  "}, "Table is empty"},
		{"channel of 64 bytes", trigger.Options{Schema: "s", Channel: strings.Repeat("c", 64)}, "is longer than 63 bytes, which Postgres truncates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := trigger.SQL(tt.opts)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
	_, err := trigger.SQL(trigger.Options{Schema: "s", Channel: strings.Repeat("c", 63)})
	require.NoError(t, err, "63 bytes is fine")
}

func TestName(t *testing.T) {
	t.Parallel()
	base := trigger.Options{Schema: "s", Table: "events", IDColumn: "id", Channel: "events"}
	name := trigger.Name(base)
	require.True(t, strings.HasPrefix(name, "notified_capture_"), name)
	require.LessOrEqual(t, len(name), 63)
	require.Equal(t, name, trigger.Name(base), "stable")
	require.Equal(t, name, trigger.Name(trigger.Options{}), "defaults give the same name")

	other := base
	other.Schema = "other"
	require.Equal(t, name, trigger.Name(other), "the outbox schema is not part of the name")

	seen := map[string]string{name: "base"}
	for label, o := range map[string]trigger.Options{
		"channel":   {Table: "events", IDColumn: "id", Channel: "events2"},
		"channel 2": {Table: "events", IDColumn: "id", Channel: "Events"},
		"table":     {Table: "app.events", IDColumn: "id", Channel: "events"},
		"id column": {Table: "events", IDColumn: "uid", Channel: "events"},
	} {
		n := trigger.Name(o)
		prev, dup := seen[n]
		require.False(t, dup, "%s gives the same name as %s", label, prev)
		seen[n] = label
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}

	sql, err := trigger.Install(ctx, db.Pool, opts)
	require.NoError(t, err)
	want, err := trigger.SQL(opts)
	require.NoError(t, err)
	require.Equal(t, want, sql, "Install returns the SQL it ran")
	require.Equal(t, 1, countTriggers(t, db, db.Events()))

	requireCaptured(t, db, db.Events(), db.Channel)
}

func TestInstallCurrentSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	conn := testdb.SearchPathConn(t, db)
	sql, err := trigger.Install(ctx, conn, trigger.Options{Channel: db.Channel})
	require.NoError(t, err)
	require.Contains(t, sql, `INSERT INTO `+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize(), "the schema is resolved")
	require.Equal(t, 1, countTriggers(t, db, db.Events()))

	requireCaptured(t, db, db.Events(), db.Channel)
}

func TestRolledBackInsertIsNotCaptured(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	marker := db.Channel + "_m"
	conn := testdb.Listen(t, db, db.Channel, marker)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO "+db.Events()+" (name) VALUES ('x')")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	require.Empty(t, outbox(t, db, db.Channel))
	testdb.NoNotification(t, db, conn, marker)
}

// TestChannelsAsSpelled installs triggers whose channels need quoting in SQL
// or in LISTEN, and checks that each notifies on exactly its channel.
func TestChannelsAsSpelled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, prefix string }{
		{"single quote", "it's-"},
		{"two single quotes", "o''brien'-"},
		{"dollar tag", "$notified$"},
		{"dollar tags", "$notified$$notified0$x"},
		{"hyphen", "my-events-"},
		{"capitals", "MyEvents"},
		{"backslash", `back\slash-`},
		{"double quote", `say "hi"-`},
		{"semicolon", "a; drop table x; --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t)
			ctx := context.Background()
			channel := tc.prefix + suffix(db)
			sentinel := pgx.Identifier{db.Schema, "x"}.Sanitize()
			testdb.Exec(t, db.Pool, "CREATE TABLE "+sentinel+" (a int)")

			_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: channel})
			require.NoError(t, err)
			require.Equal(t, 1, countTriggers(t, db, db.Events()))

			// Listen on the channel and on its lower-case form, which differs
			// for "MyEvents": the notification must come on the exact one.
			conn := testdb.Listen(t, db, channel, strings.ToLower(channel))
			id := insertEvent(t, db, db.Events())
			n := testdb.NextNotification(t, conn)
			require.Equal(t, channel, n.Channel)
			require.Equal(t, id, n.Payload)
			require.Equal(t, []string{id}, outbox(t, db, channel))
			require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()),
				"no outbox row under another spelling")
			require.Equal(t, 0, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+sentinel))
		})
	}
}

func TestDollarTagAvoidsBody(t *testing.T) {
	t.Parallel()
	sql, err := trigger.SQL(trigger.Options{Schema: "s", Channel: "$notified$"})
	require.NoError(t, err)
	require.Contains(t, sql, "AS $notified0$")
	require.Contains(t, sql, "END\n$notified0$;")

	sql, err = trigger.SQL(trigger.Options{Schema: "s", Channel: "$notified$$notified0$"})
	require.NoError(t, err)
	require.Contains(t, sql, "AS $notified1$")
}

// TestHostileTableName installs the trigger on a table whose name tries to
// end the identifier and drop another table.
func TestHostileTableName(t *testing.T) {
	t.Parallel()
	const hostile = `events"; drop table x; --`
	for _, qualified := range []bool{false, true} {
		t.Run(fmt.Sprintf("qualified=%v", qualified), func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			ctx := context.Background()
			table := pgx.Identifier{db.Schema, hostile}.Sanitize()
			sentinel := pgx.Identifier{db.Schema, "x"}.Sanitize()
			testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, name text, payload jsonb)")
			testdb.Exec(t, db.Pool, "CREATE TABLE "+sentinel+" (a int)")

			conn := testdb.SearchPathConn(t, db)
			opts := trigger.Options{Schema: db.Schema, Table: hostile, Channel: db.Channel}
			if qualified {
				opts.Table = db.Schema + "." + hostile
			}
			_, err := trigger.Install(ctx, conn, opts)
			require.NoError(t, err)

			require.Equal(t, 0, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+sentinel), "the sentinel table x still exists")
			require.Equal(t, 1, countTriggers(t, db, table))
			requireCaptured(t, db, table, db.Channel)
		})
	}
}

// TestNewlinesInNames uses names with a newline: the generated SQL carries
// them in "--" comment lines, which a newline ends, so what follows must not
// run as SQL. Postgres allows a newline in a quoted identifier and in a
// channel name.
func TestNewlinesInNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, table, idColumn, channel string }{
		{name: "table", table: "events\n; drop table x; --", idColumn: "id", channel: "c"},
		{name: "id column", table: "events", idColumn: "id\n; drop table x; --", channel: "c"},
		{name: "channel", table: "events", idColumn: "id", channel: "c\n; drop table x; --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			ctx := context.Background()
			table := pgx.Identifier{db.Schema, tc.table}.Sanitize()
			sentinel := pgx.Identifier{db.Schema, "x"}.Sanitize()
			testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" ("+pgx.Identifier{tc.idColumn}.Sanitize()+" bigserial PRIMARY KEY, name text, payload jsonb)")
			testdb.Exec(t, db.Pool, "CREATE TABLE "+sentinel+" (a int)")
			channel := tc.channel + suffix(db)

			conn := testdb.SearchPathConn(t, db)
			_, err := trigger.Install(ctx, conn, trigger.Options{Schema: db.Schema, Table: tc.table, IDColumn: tc.idColumn, Channel: channel})
			require.NoError(t, err)

			var exists bool
			require.NoError(t, db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", sentinel).Scan(&exists))
			require.True(t, exists, "the sentinel table x was dropped by SQL smuggled in through a newline in the %s", tc.name)
			if tc.idColumn == "id" {
				requireCaptured(t, db, table, channel)
				return
			}
			var id string
			require.NoError(t, db.Pool.QueryRow(ctx, "INSERT INTO "+table+" (name) VALUES ('e') RETURNING "+
				pgx.Identifier{tc.idColumn}.Sanitize()+"::text").Scan(&id))
			require.Equal(t, []string{id}, outbox(t, db, channel))
		})
	}
}

func TestInstallMissingTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Schema + ".nope", Channel: db.Channel})
	require.Error(t, err)
	require.ErrorIs(t, err, bridge.ErrTableNotFound)
	require.Contains(t, err.Error(), "install trigger on "+db.Schema+".nope")
	require.Contains(t, err.Error(), "does not exist")
}

func TestInstallMissingTableCaseHint(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Schema + ".Events", Channel: db.Channel})
	require.ErrorIs(t, err, bridge.ErrTableNotFound)
	require.Contains(t, err.Error(), "does not exist")
	require.Contains(t, err.Error(), "did you mean "+db.Schema+".events?")
}

func TestInstallMissingIDColumn(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel, IDColumn: "event_id"})
	require.Error(t, err)
	require.ErrorIs(t, err, bridge.ErrColumnNotFound)
	require.Contains(t, err.Error(), `no id column "event_id"`)
	require.Zero(t, countTriggers(t, db, db.Events()))
}

func TestInstallUnsupportedIDType(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel, IDColumn: "payload"})
	require.ErrorIs(t, err, bridge.ErrIDType)
	require.Contains(t, err.Error(), `id column "payload" of `+db.Events()+" is jsonb")
}

func TestInstallUnmigrated(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.Error(t, err)
	require.True(t, errors.Is(err, migrations.ErrNotMigrated), "%v", err)
	require.Contains(t, err.Error(), "notified-bridge migrate --schema "+db.Schema)
	require.Zero(t, countTriggers(t, db, db.Events()))
}

func TestInstallBadOptions(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: strings.Repeat("c", 64)})
	require.ErrorContains(t, err, "is longer than 63 bytes, which Postgres truncates")

	_, err = trigger.Install(ctx, db.Pool, trigger.Options{Schema: "bad-name", Table: db.Events(), Channel: db.Channel})
	require.Error(t, err)
	require.Contains(t, err.Error(), "install trigger on "+db.Events())

	require.Zero(t, countTriggers(t, db, db.Events()))
}

func TestReinstallIsIdempotent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel}
	for range 3 {
		_, err := trigger.Install(ctx, db.Pool, opts)
		require.NoError(t, err)
	}
	require.Equal(t, 1, countTriggers(t, db, db.Events()))
	require.Equal(t, 1, testdb.Count(t, db.Pool,
		"SELECT count(*) FROM pg_proc WHERE pronamespace = $1::regnamespace AND proname = $2", db.Schema, trigger.Name(opts)))

	marker := db.Channel + "_m"
	conn := testdb.Listen(t, db, db.Channel, marker)
	id := insertEvent(t, db, db.Events())
	n := testdb.NextNotification(t, conn)
	require.Equal(t, id, n.Payload)
	testdb.NoNotification(t, db, conn, marker)
	require.Equal(t, []string{id}, outbox(t, db, db.Channel), "one outbox row per insert")
}

// TestReinstallUnderAnotherSpelling installs the trigger for the same table,
// id column and channel twice, once schema-qualified and once resolved
// through the search_path. Install says it replaces an earlier install for
// the same table, so there should be one trigger and one outbox row per
// insert.
func TestReinstallUnderAnotherSpelling(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	_, err = trigger.Install(ctx, testdb.SearchPathConn(t, db), trigger.Options{Schema: db.Schema, Table: "events", Channel: db.Channel})
	require.NoError(t, err)

	require.Equal(t, 1, countTriggers(t, db, db.Events()))
	id := insertEvent(t, db, db.Events())
	require.Equal(t, []string{id}, outbox(t, db, db.Channel))
}

func TestTwoChannelsOnOneTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	a, b := db.Channel+"_a", db.Channel+"_b"
	for _, ch := range []string{a, b} {
		_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: ch})
		require.NoError(t, err)
	}
	require.Equal(t, 2, countTriggers(t, db, db.Events()))

	conn := testdb.Listen(t, db, a, b)
	id := insertEvent(t, db, db.Events())
	got := map[string]string{}
	for range 2 {
		n := testdb.NextNotification(t, conn)
		got[n.Channel] = n.Payload
	}
	require.Equal(t, map[string]string{a: id, b: id}, got)
	require.Equal(t, []string{id}, outbox(t, db, a))
	require.Equal(t, []string{id}, outbox(t, db, b))
}

func TestIDTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, column, insert string
	}{
		{"uuid", "id uuid PRIMARY KEY DEFAULT gen_random_uuid()", "INSERT INTO %s (name) VALUES ('x') RETURNING id::text"},
		{"text", "id text PRIMARY KEY", "INSERT INTO %s (id, name) VALUES ('order-42/Ä b', 'x') RETURNING id::text"},
		{"varchar", "id varchar(40) PRIMARY KEY", "INSERT INTO %s (id, name) VALUES ('v-1', 'x') RETURNING id::text"},
		{"integer", "id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "INSERT INTO %s (name) VALUES ('x') RETURNING id::text"},
		{"smallint", "id smallserial PRIMARY KEY", "INSERT INTO %s (name) VALUES ('x') RETURNING id::text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			ctx := context.Background()
			table := pgx.Identifier{db.Schema, "ev_" + tc.name}.Sanitize()
			testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" ("+tc.column+", name text)")
			_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Schema + ".ev_" + tc.name, Channel: db.Channel})
			require.NoError(t, err)

			conn := testdb.Listen(t, db, db.Channel)
			var id string
			require.NoError(t, db.Pool.QueryRow(ctx, fmt.Sprintf(tc.insert, table)).Scan(&id))
			n := testdb.NextNotification(t, conn)
			require.Equal(t, db.Channel, n.Channel)
			require.Equal(t, id, n.Payload)
			require.Equal(t, []string{id}, outbox(t, db, db.Channel))
		})
	}
}

func TestBulkInsert(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	conn := testdb.Listen(t, db, db.Channel)

	const n = 1000
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+" (name, payload) SELECT 'bulk', jsonb_build_object('i', i) FROM generate_series(1, $1) AS i", n)

	outboxTable := pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()
	require.Equal(t, n, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+outboxTable+" WHERE channel = $1", db.Channel))
	require.Equal(t, n, testdb.Count(t, db.Pool, "SELECT count(DISTINCT event_id) FROM "+outboxTable+" WHERE channel = $1", db.Channel))
	require.Zero(t, testdb.Count(t, db.Pool,
		"SELECT count(*) FROM "+db.Events()+" e FULL JOIN "+outboxTable+" o ON o.event_id = e.id::text WHERE e.id IS NULL OR o.event_id IS NULL"),
		"the outbox holds exactly the inserted ids")

	payloads := map[string]bool{}
	for range n {
		nt := testdb.NextNotification(t, conn)
		require.Equal(t, db.Channel, nt.Channel)
		payloads[nt.Payload] = true
	}
	require.Len(t, payloads, n, "one notification per row")
}

// TestProducerWithoutPrivilegesOnNotifiedSchema checks that an application
// role that may insert events, and has no privilege at all on notified's
// schema, still has its events captured.
func TestProducerWithoutPrivilegesOnNotifiedSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	app := db.Schema + "_app"
	role := db.Schema + "_producer"
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+app)
	testdb.Exec(t, db.Pool, "CREATE TABLE "+app+".events (id bigserial PRIMARY KEY, name text, payload jsonb)")
	testdb.Exec(t, db.Pool, "CREATE ROLE "+role)
	t.Cleanup(func() {
		testdb.Exec(t, db.Pool, "DROP SCHEMA "+app+" CASCADE")
		testdb.Exec(t, db.Pool, "DROP OWNED BY "+role)
		testdb.Exec(t, db.Pool, "DROP ROLE "+role)
	})
	testdb.Exec(t, db.Pool, "GRANT USAGE ON SCHEMA "+app+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT INSERT, SELECT ON "+app+".events TO "+role)
	testdb.Exec(t, db.Pool, "GRANT USAGE ON SEQUENCE "+app+".events_id_seq TO "+role)
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: app + ".events", Channel: db.Channel})
	require.NoError(t, err)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "SET LOCAL ROLE "+role)
	require.NoError(t, err)
	// The role cannot touch the outbox directly...
	_, err = tx.Exec(ctx, "SAVEPOINT s")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1 FROM "+db.Schema+".notified_outbox")
	require.ErrorContains(t, err, "permission denied")
	_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
	require.NoError(t, err)
	// ...but its inserts are captured.
	var id string
	require.NoError(t, tx.QueryRow(ctx, "INSERT INTO "+app+".events (name) VALUES ('e') RETURNING id::text").Scan(&id))
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, []string{id}, outbox(t, db, db.Channel))
}

func TestInstalledNameMatchesTheInstalledTrigger(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	conn := testdb.SearchPathConn(t, db) // "events" resolves to the test's schema
	opts := trigger.Options{Schema: db.Schema, Table: "events", Channel: db.Channel}
	_, err := trigger.Install(ctx, conn, opts)
	require.NoError(t, err)
	got, err := trigger.InstalledName(ctx, conn, opts)
	require.NoError(t, err)
	require.Equal(t, trigger.Name(trigger.Options{Table: db.Schema + ".events", Channel: db.Channel}), got)
	require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_trigger WHERE tgname = $1", got))

	_, err = trigger.InstalledName(ctx, conn, trigger.Options{Table: "nope"})
	require.ErrorContains(t, err, "resolve table nope")
}
