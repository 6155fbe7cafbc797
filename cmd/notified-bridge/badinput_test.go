package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// The bad-input matrix of the command line: configuration that cannot work
// fails at once with one line naming the problem and the fix, and names that
// need quoting (hostile, hyphenated, capitalized, non-ASCII) work exactly as
// spelled, without running any SQL smuggled in them.

// badInputURL returns db's URL with search_path set to schema, so that
// unqualified names (and any SQL smuggled in them) resolve in the test's
// schema, and with a password when it has none, so that every message can be
// checked for leaking it. It returns the password too.
func badInputURL(t *testing.T, rawURL, schema string) (string, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	secret, has := u.User.Password()
	if !has && os.Getenv("PGPASSWORD") == "" {
		// A trust server ignores it.
		secret = "s3cret-" + schema
		u.User = url.UserPassword(u.User.Username(), secret)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), secret
}

// runWithin runs the binary like runEnv but gives up after timeout, for a
// command that might not exit.
func runWithin(t *testing.T, timeout time.Duration, env []string, args ...string) (stdout, stderr string, exitCode int, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err := cmd.Run()
	if ctx.Err() != nil {
		return outBuf.String(), errBuf.String(), -1, true
	}
	if err != nil {
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, "notified-bridge %q did not run; stderr: %s", args, errBuf.String())
		exitCode = exitErr.ExitCode()
	}
	return outBuf.String(), errBuf.String(), exitCode, false
}

// requireSentinel checks that the sentinel table x of schema still exists
// with its one row: no SQL smuggled in a name ran.
func requireSentinel(t *testing.T, db *testdb.DB) {
	t.Helper()
	var n *int
	err := db.Pool.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM "+tbl(db, "x")+")::int").Scan(&n)
	require.NoError(t, err, "the sentinel table x is gone")
	require.NotNil(t, n)
	require.Equal(t, 1, *n, "the sentinel table x lost its row")
}

// createSentinel creates the table x, with one row, that the hostile names
// try to drop.
func createSentinel(t *testing.T, db *testdb.DB) {
	t.Helper()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+tbl(db, "x")+" (a int)")
	testdb.Exec(t, db.Pool, "INSERT INTO "+tbl(db, "x")+" VALUES (1)")
}

// TestBadInputConfig runs the binary with configuration that cannot work:
// each row exits 1 with exactly one line on stderr.
func TestBadInputConfig(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	createSentinel(t, db)
	testdb.Exec(t, db.Pool, "CREATE TABLE "+tbl(db, "myevents")+" (id bigserial PRIMARY KEY, name text)")
	dbURL, secret := badInputURL(t, db.URL, db.Schema)
	pc, err := pgconn.ParseConfig(db.URL)
	require.NoError(t, err)
	hostPort := fmt.Sprintf("%s:%d", pc.Host, pc.Port)
	noSuchDB := withDatabase(t, dbURL, "no_such_db_xyz")
	const unreachable = "postgres://postgres:s3cret-unreachable@127.0.0.1:1/test?sslmode=disable"
	// The events table is given unqualified: it resolves through the
	// search_path, in the test's schema.
	runArgs := func(extra ...string) []string {
		return append([]string{"--schema", db.Schema, "run", "--table", "events", "--channel", db.Channel}, extra...)
	}
	const (
		tableHint = ": create it, or set --table / NOTIFIED_EVENTS_TABLE_NAME to an existing table (schema.table for another schema)"
		idHint    = ": set --id-field / NOTIFIED_ID_FIELD_NAME to the column the notification payload names"
		nameHint  = ": set --name-field / NOTIFIED_NAME_FIELD_NAME to the column that holds the event name"
		connHint  = ": check DATABASE_URL and that the server is running"
		notPos    = ` is not positive: use a number of seconds such as 5, or a duration such as 500ms`
		notDur    = ` is not a number of seconds or a duration such as 500ms or 5s`
		pollFlag  = "--poll-interval / NOTIFIED_CHANNEL_SELECT_TIMEOUT: "
	)
	app := db.Schema + "_app" // a schema that does not exist
	cases := []struct {
		name string
		url  string   // DATABASE_URL; dbURL when empty
		env  []string // more environment
		args []string
		want string // the whole stderr line, after "notified-bridge: "
		bug  string // a known product bug this row shows
	}{
		{name: "table missing", args: runArgs("--table", "no_such_table"),
			want: `events table not found: "no_such_table" does not exist` + tableHint},
		{name: "table missing in its schema", args: runArgs("--table", db.Schema+".no_such_table"),
			want: `events table not found: "` + db.Schema + `.no_such_table" does not exist` + tableHint},
		{name: "schema-qualified, schema missing", args: runArgs("--table", app+".events"),
			want: `events table not found: "` + app + `.events" does not exist` + tableHint},
		{name: "hostile table", args: runArgs("--table", `events"; drop table x; --`),
			want: `events table not found: "events\"; drop table x; --" does not exist` + tableHint},
		{name: "hostile schema", args: runArgs("--table", `app"; drop table x; --.events`),
			want: `events table not found: "app\"; drop table x; --.events" does not exist` + tableHint},
		{name: "hyphenated table missing", args: runArgs("--table", "my-events"),
			want: `events table not found: "my-events" does not exist` + tableHint},
		{name: "capitalized table missing, lower-case one exists", args: runArgs("--table", "MyEvents"),
			want: `events table not found: "MyEvents" does not exist: names are case-sensitive here; did you mean myevents?`},
		{name: "too many dots", args: runArgs("--table", "a.b.c"),
			want: `events table name "a.b.c" has more than one dot: use table or schema.table`},
		{name: "empty table", args: runArgs("--table", ""),
			want: "--table or NOTIFIED_EVENTS_TABLE_NAME is empty: give a value, or leave it unset for the default"},
		{name: "id column missing", args: runArgs("--id-field", "nope"),
			want: `column not found: table events has no id column "nope"` + idHint},
		{name: "hostile id column", args: runArgs("--id-field", `id"; drop table x; --`),
			want: `column not found: table events has no id column "id\"; drop table x; --"` + idHint},
		{name: "name column missing", args: runArgs("--name-field", "nope"),
			want: `column not found: table events has no name column "nope"` + nameHint},
		{name: "hostile name column", args: runArgs("--name-field", `name"; drop table x; --`),
			want: `column not found: table events has no name column "name\"; drop table x; --"` + nameHint},
		{name: "channel too long", args: runArgs("--channel", strings.Repeat("c", 64)),
			want: `channel "` + strings.Repeat("c", 64) + `" is longer than 63 bytes, which Postgres truncates: use a shorter channel`},
		{name: "empty channel", args: runArgs("--channel", "", "--poll-only"),
			want: "--channel or NOTIFIED_CHANNEL is empty: give a value, or leave it unset for the default"},
		{name: "empty channel, install-trigger", args: []string{"--schema", db.Schema, "install-trigger", "--print", "--table", "events", "--channel", ""},
			want: "--channel or NOTIFIED_CHANNEL is empty: give a value, or leave it unset for the default"},
		{name: "empty id column", args: runArgs("--id-field", " "),
			want: "--id-field or NOTIFIED_ID_FIELD_NAME is empty: give a value, or leave it unset for the default"},
		{name: "empty name column from the environment", env: []string{"NOTIFIED_NAME_FIELD_NAME="}, args: runArgs(),
			want: "--name-field or NOTIFIED_NAME_FIELD_NAME is empty: give a value, or leave it unset for the default"},
		{name: "poll interval 0", args: runArgs("--poll-interval", "0"), want: pollFlag + `interval "0"` + notPos},
		{name: "poll interval -1", args: runArgs("--poll-interval", "-1"), want: pollFlag + `interval "-1"` + notPos},
		{name: "poll interval abc", args: runArgs("--poll-interval", "abc"), want: pollFlag + `interval "abc"` + notDur},
		{name: "poll interval 1h2x", args: runArgs("--poll-interval", "1h2x"), want: pollFlag + `interval "1h2x"` + notDur},
		{name: "database unreachable", url: unreachable, args: runArgs(),
			want: "connect to database test on 127.0.0.1:1: 127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused" + connHint},
		{name: "database does not exist", url: noSuchDB, args: runArgs(),
			want: "connect to database no_such_db_xyz on " + hostPort + `: database "no_such_db_xyz" does not exist (SQLSTATE 3D000)` + connHint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.url
			if u == "" {
				u = dbURL
			}
			// A row showing a known bug may start a bridge that runs: give
			// it less time.
			timeout := 10 * time.Second
			if tc.bug != "" {
				timeout = 3 * time.Second
			}
			stdout, stderr, code, timedOut := runWithin(t, timeout, append(envWithURL(u), tc.env...), tc.args...)
			want := "notified-bridge: " + tc.want + "\n"
			if tc.bug != "" {
				if timedOut || code != 1 || stderr != want {
					t.Skipf("BUG: %s: exit code %d (timed out: %v), stdout %q, stderr %q", tc.bug, code, timedOut, tail(stdout, 300), tail(stderr, 300))
				}
				t.Errorf("row marked as a bug now passes: remove its bug note (%s)", tc.bug)
			}
			require.False(t, timedOut, "notified-bridge %q did not exit: %s", tc.args, tail(stderr, 2000))
			requireUserError(t, stderr, code)
			require.Equal(t, want, stderr)
			require.Empty(t, stdout)
			require.NotContains(t, stderr, secret, "the password leaked into the message")
			require.NotContains(t, stderr, "s3cret")
			requireSentinel(t, db)
		})
	}
}

// TestBadInputNamesThatWork installs the trigger and runs the bridge with
// table, column and channel names that need quoting. Each works exactly as
// spelled: an inserted event is dispatched, an id sent by hand with
// pg_notify on the exact channel is dispatched, one sent on the channel's
// lower-case spelling is not, and no SQL in the names runs.
func TestBadInputNamesThatWork(t *testing.T) {
	t.Parallel()
	const hostile = `"; drop table x; --`
	cases := []struct {
		name string
		// table is the events table to create (schema-qualified by the
		// test's schema unless inApp), and the --table argument.
		table          string
		inApp          bool
		idCol, nameCol string
		channel        string // suffixed with the test's schema's random part
	}{
		{name: "hyphenated table", table: "my-events"},
		{name: "capitalized table", table: "MyEvents"},
		{name: "hostile table", table: "events" + hostile},
		{name: "schema-qualified table", table: "events", inApp: true},
		{name: "schema-qualified capitalized hyphenated table", table: "My-Events", inApp: true},
		{name: "hostile schema-qualified table", table: "events" + hostile, inApp: true},
		{name: "hostile columns", table: "events_cols", idCol: "id" + hostile, nameCol: "name" + hostile},
		{name: "capitalized columns", table: "events_caps", idCol: "EventId", nameCol: "Event Name"},
		{name: "hostile channel", channel: "events" + hostile},
		{name: "hyphenated channel", channel: "my-events"},
		{name: "capitalized channel", channel: "MyEvents"},
		{name: "unicode channel", channel: "Ünï cøde"},
		{name: "quoted channel", channel: `it's "quoted"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := testdb.New(t)
			createSentinel(t, db)
			dbURL, _ := badInputURL(t, db.URL, db.Schema)
			env := envWithURL(dbURL)
			suffix := db.Schema[len(db.Schema)-8:]

			idCol, nameCol := tc.idCol, tc.nameCol
			if idCol == "" {
				idCol = "id"
			}
			if nameCol == "" {
				nameCol = "name"
			}
			channel := db.Channel
			if tc.channel != "" {
				// Notifications are database-wide: a suffix keeps other
				// tests' bridges off this channel.
				channel = tc.channel + "-" + suffix
			}
			tableArg, ident := "events", pgx.Identifier{db.Schema, "events"}
			if tc.table != "" {
				schema := db.Schema
				if tc.inApp {
					schema = db.Schema + "_app"
					testdb.Exec(t, db.Pool, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
					t.Cleanup(func() { testdb.Exec(t, db.Pool, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
				}
				ident = pgx.Identifier{schema, tc.table}
				testdb.Exec(t, db.Pool, "CREATE TABLE "+ident.Sanitize()+" ("+pgx.Identifier{idCol}.Sanitize()+" bigserial PRIMARY KEY, "+
					pgx.Identifier{nameCol}.Sanitize()+" text)")
				tableArg = tc.table
				if tc.inApp {
					tableArg = schema + "." + tc.table
				}
			}
			table := ident.Sanitize()
			insert := func() string {
				t.Helper()
				var id string
				require.NoError(t, db.Pool.QueryRow(ctx, "INSERT INTO "+table+" ("+pgx.Identifier{nameCol}.Sanitize()+") VALUES ('e') RETURNING "+
					pgx.Identifier{idCol}.Sanitize()+"::text").Scan(&id))
				return id
			}
			// Rows from before the trigger: only a hand-sent NOTIFY announces
			// them.
			byHand, wrongCase := insert(), insert()

			out, stderr, code := runEnv(t, env, "--schema", db.Schema, "install-trigger", "--table", tableArg, "--channel", channel, "--id-field", idCol)
			require.Equal(t, 0, code, "install-trigger: %s", stderr)
			require.Contains(t, out, fmt.Sprintf(" installed on %s: notifies channel %q with %s::text and records the outbox row\n", tableArg, channel, idCol))
			requireSentinel(t, db)
			_, stderr, code = runEnv(t, env, "--schema", db.Schema, "routes", "add", "e", "k")
			require.Equal(t, 0, code, "routes add: %s", stderr)

			p := startBridgeEnv(t, db, env, "--table", tableArg, "--channel", channel, "--id-field", idCol, "--name-field", nameCol,
				"--missing-grace", "500ms")
			require.Equal(t, channel, logged(p, "bridge starting", "channel"))
			require.Equal(t, tableArg, logged(p, "bridge starting", "table"))

			dispatched := func(ids ...string) {
				t.Helper()
				testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
					n := count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch")+
						" WHERE channel = $1 AND event_id = ANY($2) AND outcome = 'dispatched'", channel, ids)
					return n == len(ids), fmt.Sprintf("%d of events %v dispatched", n, ids)
				})
			}
			inserted := insert()
			dispatched(inserted)

			if strings.ToLower(channel) != channel {
				// What an unquoted NOTIFY MyEvents would send: another
				// channel, which the bridge does not hear.
				testdb.Exec(t, db.Pool, "SELECT pg_notify($1, $2)", strings.ToLower(channel), wrongCase)
			}
			testdb.Exec(t, db.Pool, "SELECT pg_notify($1, $2)", channel, byHand)
			dispatched(byHand)

			// Exactly these two events, one job each, on the exact channel.
			rows, err := db.Pool.Query(ctx, "SELECT channel, event_id, outcome FROM "+tbl(db, "notified_dispatch")+" ORDER BY event_id::bigint")
			require.NoError(t, err)
			type rec struct{ Channel, ID, Outcome string }
			recs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
			require.NoError(t, err)
			require.Equal(t, []rec{{channel, byHand, "dispatched"}, {channel, inserted, "dispatched"}}, recs)
			rows, err = db.Pool.Query(ctx, "SELECT kind, args->>'channel', args->>'event_id' FROM "+tbl(db, "river_job")+" ORDER BY (args->>'event_id')::bigint")
			require.NoError(t, err)
			type job struct{ Kind, Channel, ID string }
			jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[job])
			require.NoError(t, err)
			require.Equal(t, []job{{"k", channel, byHand}, {"k", channel, inserted}}, jobs)
			requireSentinel(t, db)

			require.Equal(t, exitTerminate, p.stop(t))
			for _, line := range strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n") {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), "log line is not JSON: %q", line)
				require.NotEqual(t, "ERROR", rec["level"], "error logged: %s", line)
			}
		})
	}
}

// TestBadInputWrongPassword runs the binary with a wrong password. The
// shared test server trusts every local connection, so the test starts a
// throwaway server whose pg_hba.conf requires scram-sha-256 for one role.
func TestBadInputWrongPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster := testdb.Cluster(t)
	su, err := pgxpool.New(ctx, cluster.URL())
	require.NoError(t, err)
	t.Cleanup(su.Close)

	const role, right, wrong = "nb_pw", "right-S3cret", "wrong-S3cret"
	testdb.Exec(t, su, "SET password_encryption = 'scram-sha-256'")
	testdb.Exec(t, su, "CREATE ROLE "+role+" LOGIN PASSWORD '"+right+"'")
	hba := filepath.Join(cluster.Dir(), "data", "pg_hba.conf")
	old, err := os.ReadFile(hba)
	require.NoError(t, err)
	// Rules are read top to bottom: this one comes before initdb's trust.
	require.NoError(t, os.WriteFile(hba, append([]byte("host all "+role+" 127.0.0.1/32 scram-sha-256\n"), old...), 0o600))
	var reloaded bool
	require.NoError(t, su.QueryRow(ctx, "SELECT pg_reload_conf()").Scan(&reloaded))
	require.True(t, reloaded)
	var method string
	require.NoError(t, su.QueryRow(ctx, "SELECT auth_method FROM pg_hba_file_rules WHERE $1 = ANY(user_name) AND error IS NULL", role).Scan(&method))
	require.Equal(t, "scram-sha-256", method)

	pc, err := pgconn.ParseConfig(cluster.URL())
	require.NoError(t, err)
	port := strconv.Itoa(int(pc.Port))
	roleURL := func(password string) string {
		u := "postgres://" + role
		if password != "" {
			u += ":" + password
		}
		return u + "@127.0.0.1:" + port + "/postgres?sslmode=disable"
	}
	// The reload applies to new connections shortly: wait until the wrong
	// password is refused, and check the right one is accepted.
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		c, err := pgx.Connect(ctx, roleURL(wrong))
		if err == nil {
			_ = c.Close(ctx)
			return false, "the wrong password is accepted"
		}
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "28P01", fmt.Sprintf("connect: %v", err)
	})
	c, err := pgx.Connect(ctx, roleURL(right))
	require.NoError(t, err, "the right password is refused")
	require.NoError(t, c.Close(ctx))

	const fix = ": check DATABASE_URL and that the server is running"
	refused := "connect to database postgres on 127.0.0.1:" + port + `: password authentication failed for user "` + role + `" (SQLSTATE 28P01)` + fix
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"in the URL", envWithURL(roleURL(wrong)), refused},
		{"in PGPASSWORD", append(envWithURL(roleURL("")), "PGPASSWORD="+wrong), refused},
		{"none given", envWithURL(roleURL("")), refused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tc.env
			if !strings.Contains(strings.Join(env, "\n"), "PGPASSWORD="+wrong) {
				env = append(env, "PGPASSWORD=") // an outer PGPASSWORD must not count
			}
			stdout, stderr, code := runEnv(t, env, "run")
			requireUserError(t, stderr, code)
			require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr)
			require.Empty(t, stdout)
			require.NotContains(t, stderr, wrong, "the password leaked into the message")
			require.NotContains(t, stderr, right)
		})
	}
}
