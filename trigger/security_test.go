package trigger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

// loginRole creates a role that can log in, named for the test's schema,
// and drops it (and what it owns) when the test ends. Tests connect as it
// rather than SET ROLE from the superuser: code running in a session whose
// session user is a superuser could RESET ROLE.
func loginRole(t *testing.T, db *testdb.DB, suffix string) string {
	t.Helper()
	role := db.Schema + "_" + suffix
	testdb.Exec(t, db.Pool, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN")
	t.Cleanup(func() {
		ctx := context.Background()
		_, err := db.Pool.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize()+" CASCADE")
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())
		require.NoError(t, err)
	})
	return role
}

// connectAs opens a connection logged in as role (the test server trusts
// local connections), closed when the test ends.
func connectAs(t *testing.T, db *testdb.DB, role string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.User = role
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func execAs(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

func isSuperuser(t *testing.T, db *testdb.DB, role string) bool {
	t.Helper()
	var super bool
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role).Scan(&super))
	return super
}

// requireRefusedType requires err to be the capture trigger's refusal of
// an id of type typ, raised by Postgres with its SQLSTATE.
func requireRefusedType(t *testing.T, err error, table, typ string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want the trigger's error, got %v", err)
	require.Equal(t, "42804", pgErr.Code, "%v", err)
	require.Equal(t, fmt.Sprintf(`notified capture trigger: id column "id" of %s is %s, not smallint, integer, bigint, uuid, text or varchar`, table, typ),
		pgErr.Message)
	require.Contains(t, pgErr.Detail, "The row is not inserted")
}

// TestTableOwnerCannotRunCodeAsInstaller: the trigger's function runs with
// the rights of the role that installed it (here a superuser). The events
// table's owner, who is not one, changes the id column to a type of their
// own whose cast to text makes them superuser and writes a table only a
// superuser may: the insert must fail with the trigger's message, and
// neither must happen.
func TestTableOwnerCannotRunCodeAsInstaller(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	owner := loginRole(t, db, "owner")
	app := db.Schema + "_app"
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+pgx.Identifier{app}.Sanitize()+" AUTHORIZATION "+pgx.Identifier{owner}.Sanitize())
	t.Cleanup(func() { testdb.Exec(t, db.Pool, "DROP SCHEMA "+pgx.Identifier{app}.Sanitize()+" CASCADE") })
	sentinel := pgx.Identifier{db.Schema, "superuser_only"}.Sanitize()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+sentinel+" (who text)")
	testdb.Exec(t, db.Pool, "GRANT USAGE ON SCHEMA "+pgx.Identifier{db.Schema}.Sanitize()+" TO "+pgx.Identifier{owner}.Sanitize())

	events := pgx.Identifier{app, "events"}.Sanitize()
	asOwner := connectAs(t, db, owner)
	execAs(t, asOwner, "CREATE TABLE "+events+" (id bigserial PRIMARY KEY, name text)")
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: app + ".events", Channel: db.Channel})
	require.NoError(t, err)
	execAs(t, asOwner, "INSERT INTO "+events+" (name) VALUES ('before')")
	require.Equal(t, []string{"1"}, outbox(t, db, db.Channel))

	// The owner's type, its cast to text, and the column changed to it.
	evil := pgx.Identifier{app, "evil"}.Sanitize()
	execAs(t, asOwner, "CREATE TYPE "+evil+" AS (v bigint)")
	execAs(t, asOwner, "CREATE FUNCTION "+pgx.Identifier{app, "evil_text"}.Sanitize()+"("+evil+") RETURNS text LANGUAGE plpgsql AS $$\n"+
		"BEGIN\n"+
		"    EXECUTE "+quote("ALTER ROLE "+pgx.Identifier{owner}.Sanitize()+" SUPERUSER")+";\n"+
		"    INSERT INTO "+sentinel+" VALUES (current_user);\n"+
		"    RETURN ($1).v::text;\n"+
		"END $$")
	execAs(t, asOwner, "CREATE CAST ("+evil+" AS text) WITH FUNCTION "+pgx.Identifier{app, "evil_text"}.Sanitize()+"("+evil+")")
	execAs(t, asOwner, "ALTER TABLE "+events+" ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id TYPE "+evil+" USING ROW(id)::"+evil)

	// The cast does run the owner's code, with the owner's rights, when
	// the owner uses it.
	_, err = asOwner.Exec(ctx, "SELECT (ROW(7)::"+evil+")::text")
	require.ErrorContains(t, err, "must be superuser to alter superuser roles")

	// A session that has not used the trigger yet gets the trigger's
	// message.
	_, err = connectAs(t, db, owner).Exec(ctx, "INSERT INTO "+events+" (id, name) VALUES (ROW(2), 'after')")
	requireRefusedType(t, err, app+".events", app+".evil")

	// One that has gets Postgres' refusal to run the plan it made for
	// bigint on another type, or, when a cache invalidation made it plan
	// again (other sessions' DDL can), the trigger's message.
	_, err = asOwner.Exec(ctx, "INSERT INTO "+events+" (id, name) VALUES (ROW(3), 'after')")
	require.Error(t, err)
	if !strings.Contains(err.Error(), "does not match that when preparing the plan") {
		requireRefusedType(t, err, app+".events", app+".evil")
	}

	require.False(t, isSuperuser(t, db, owner), "the owner made itself superuser through the trigger")
	require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+sentinel), "the owner's code wrote a table only a superuser may")
	require.Equal(t, []string{"1"}, outbox(t, db, db.Channel), "no outbox row for a refused insert")
	require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+events), "the refused inserts are not in the table")
}

// TestUnsupportedIDTypesAreRefusedAtInsert changes the id column, after the
// install, to types the trigger does not convert: each insert fails with
// the trigger's message, so that no event goes unrecorded.
func TestUnsupportedIDTypesAreRefusedAtInsert(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		create string // SQL creating the type, %s the test's schema
		typ    string // the type, %s the test's schema
		using  string // USING expression from the bigint id
		value  string // an id of the type to insert
		shown  string // how the message shows the type, %s the test's schema
	}{
		{name: "domain over bigint", create: `CREATE DOMAIN %s.big AS bigint`, typ: `%s.big`, using: "id", value: "2", shown: "%s.big"},
		{name: "domain named int8", create: `CREATE DOMAIN %s.int8 AS bigint`, typ: `%s.int8`, using: "id", value: "2", shown: "%s.int8"},
		{name: "array", typ: "bigint[]", using: "ARRAY[id]", value: "'{2}'", shown: "bigint[]"},
		{name: "composite", create: `CREATE TYPE %s.pair AS (a bigint, b bigint)`, typ: `%s.pair`, using: "ROW(id, id)", value: "ROW(2, 2)", shown: "%s.pair"},
		{name: "enum", create: `CREATE TYPE %s.mood AS ENUM ('1', '2')`, typ: `%s.mood`, using: "id::text::%s.mood", value: "'2'", shown: "%s.mood"},
		{name: "numeric", typ: "numeric", using: "id", value: "2", shown: "numeric"},
		{name: "char", typ: "char(5)", using: "id::text", value: "'2'", shown: "character"},
		{name: "range", typ: "int8range", using: "int8range(id, id, '[]')", value: "'[2,2]'", shown: "int8range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t)
			ctx := context.Background()
			schema := pgx.Identifier{db.Schema}.Sanitize()
			if tc.create != "" {
				testdb.Exec(t, db.Pool, fmt.Sprintf(tc.create, schema))
			}
			_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
			require.NoError(t, err)
			typ := tc.typ
			if tc.create != "" {
				typ = fmt.Sprintf(tc.typ, schema)
			}
			using := tc.using
			if tc.name == "enum" {
				using = fmt.Sprintf(tc.using, schema)
			}
			testdb.Exec(t, db.Pool, "ALTER TABLE "+db.Events()+" ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id TYPE "+typ+" USING "+using)

			// A connection of its own: the shared pool's may have run
			// this trigger's function for another type.
			conn, err := pgx.Connect(ctx, db.URL)
			require.NoError(t, err)
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "INSERT INTO "+db.Events()+" (id, name) VALUES ("+tc.value+", 'x')")
			shown := tc.shown
			if tc.create != "" {
				shown = fmt.Sprintf(tc.shown, db.Schema)
			}
			requireRefusedType(t, err, db.Events(), shown)
			require.Empty(t, outbox(t, db, db.Channel))
			require.Zero(t, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+db.Events()))
		})
	}
}

// TestInstallRefusesATypeNamedLikeABuiltIn: a domain called int8 in the
// table's schema has the built-in's name but not its OID.
func TestInstallRefusesATypeNamedLikeABuiltIn(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	schema := pgx.Identifier{db.Schema}.Sanitize()
	testdb.Exec(t, db.Pool, "CREATE DOMAIN "+schema+".int8 AS bigint")
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" (id "+schema+".int8 PRIMARY KEY, name text)")
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.ErrorIs(t, err, bridge.ErrIDType)
	require.ErrorContains(t, err, `id column "id" of `+db.Events()+" is "+db.Schema+".int8: use smallint, integer, bigint, uuid, text or varchar")
	require.Zero(t, countTriggers(t, db, db.Events()))
}

// TestProducerWithOnlyInsert: a producer role with INSERT on the events
// table and USAGE on its schema, and nothing on notified's schema, has its
// events recorded and announced.
func TestProducerWithOnlyInsert(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	producer := loginRole(t, db, "producer")
	app := db.Schema + "_app"
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+pgx.Identifier{app}.Sanitize())
	t.Cleanup(func() { testdb.Exec(t, db.Pool, "DROP SCHEMA "+pgx.Identifier{app}.Sanitize()+" CASCADE") })
	events := pgx.Identifier{app, "events"}.Sanitize()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+events+" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)")
	testdb.Exec(t, db.Pool, "GRANT USAGE ON SCHEMA "+pgx.Identifier{app}.Sanitize()+" TO "+pgx.Identifier{producer}.Sanitize())
	testdb.Exec(t, db.Pool, "GRANT INSERT ON "+events+" TO "+pgx.Identifier{producer}.Sanitize())
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: app + ".events", Channel: db.Channel})
	require.NoError(t, err)

	var usage bool
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT has_schema_privilege($1, $2, 'USAGE')", producer, db.Schema).Scan(&usage))
	require.False(t, usage, "the producer has no right on notified's schema")

	listener := testdb.Listen(t, db, db.Channel)
	asProducer := connectAs(t, db, producer)
	execAs(t, asProducer, "INSERT INTO "+events+" (name) VALUES ('user_signed_up')")
	n := testdb.NextNotification(t, listener)
	require.Equal(t, db.Channel, n.Channel)
	require.Equal(t, "1", n.Payload)
	require.Equal(t, []string{"1"}, outbox(t, db, db.Channel))
}

// quote returns s as an SQL string literal.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
