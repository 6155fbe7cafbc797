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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// binary is the notified-bridge built once by TestMain; every test runs it as
// a subprocess, as a user would.
var binary string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "notified-bridge-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "notified-bridge")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build notified-bridge:", err)
		return 1
	}
	return m.Run()
}

// baseEnv is the test's environment without anything that configures the
// bridge, so that only what a test passes counts.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "NOTIFIED_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func envWithURL(url string) []string { return append(baseEnv(), "DATABASE_URL="+url) }

// runEnv runs the binary to completion with env and returns its output and
// exit code.
func runEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err := cmd.Run()
	if err != nil {
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, "notified-bridge %q did not run; stderr: %s", args, errBuf.String())
		exitCode = exitErr.ExitCode()
	}
	return outBuf.String(), errBuf.String(), exitCode
}

// run runs `notified-bridge --schema <db.Schema> args...` against the test
// database.
func run(t *testing.T, db *testdb.DB, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	return runEnv(t, envWithURL(db.URL), append([]string{"--schema", db.Schema}, args...)...)
}

// mustRun runs the command, requires it to succeed and returns its stdout.
func mustRun(t *testing.T, db *testdb.DB, args ...string) string {
	t.Helper()
	stdout, stderr, code := run(t, db, args...)
	require.Equal(t, 0, code, "notified-bridge %q failed: %s", args, stderr)
	return stdout
}

// requireUserError checks that a command failed the way a user should see
// it: exit code 1 and a single "notified-bridge: ..." line on stderr that
// contains every fragment, without a Go stack trace.
func requireUserError(t *testing.T, stderr string, code int, fragments ...string) {
	t.Helper()
	require.Equal(t, 1, code, "exit code; stderr: %s", stderr)
	require.NotContains(t, stderr, "goroutine")
	require.NotContains(t, stderr, "panic")
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	require.Len(t, lines, 1, "stderr should be one line: %q", stderr)
	require.True(t, strings.HasPrefix(lines[0], "notified-bridge: "), "stderr: %q", stderr)
	for _, f := range fragments {
		require.Contains(t, lines[0], f)
	}
}

// tbl is the quoted name of a table in the test's schema.
func tbl(db *testdb.DB, name string) string { return pgx.Identifier{db.Schema, name}.Sanitize() }

func count(t *testing.T, db *testdb.DB, sql string, args ...any) int {
	t.Helper()
	return testdb.Count(t, db.Pool, sql, args...)
}

// insertEvent inserts one event and returns its id.
func insertEvent(t *testing.T, db *testdb.DB, name, payload string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"INSERT INTO "+tbl(db, "events")+" (name, payload) VALUES ($1, $2::jsonb) RETURNING id", name, payload).Scan(&id))
	return id
}

// insertEvents inserts n events named name in one transaction.
func insertEvents(ctx context.Context, db *testdb.DB, name string, n int) error {
	_, err := db.Pool.Exec(ctx, "INSERT INTO "+tbl(db, "events")+" (name, payload) "+
		"SELECT $1, jsonb_build_object('n', g) FROM generate_series(1, $2::int) AS g", name, n)
	return err
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bridgeProc is a `notified-bridge run` running in the background.
type bridgeProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // cmd.Wait's error, once done is closed
}

// startBridge starts `run` on the test's events table and channel, with a
// short poll interval and missing grace, and waits until it listens. The
// process is killed when the test ends, if it still runs.
func startBridge(t *testing.T, db *testdb.DB, extraArgs ...string) *bridgeProc {
	t.Helper()
	return startRun(t, binary, envWithURL(db.URL), append(runArgs(db), append([]string{"--missing-grace", "500ms"}, extraArgs...)...))
}

// runArgs are the arguments of `run` on the test's events table and
// channel, with a short poll interval.
func runArgs(db *testdb.DB) []string {
	return []string{"--schema", db.Schema, "run", "--table", db.Events(), "--channel", db.Channel, "--poll-interval", "200ms"}
}

// startRun starts bin with args in the environment env and waits until the
// bridge it runs listens. The process is killed when the test ends, if it
// still runs; its output is logged if the test failed.
func startRun(t *testing.T, bin string, env, args []string) *bridgeProc {
	t.Helper()
	return startUntil(t, bin, env, args, "listening")
}

// startUntil starts bin as startRun does and waits until it logs msg (as
// JSON).
func startUntil(t *testing.T, bin string, env, args []string, msg string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("bridge pid %d output:\n%s", p.cmd.Process.Pid, tail(p.stderr.String(), 4000))
		}
	})
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		if p.exited() {
			t.Fatalf("process exited before it logged %q (%v): %s", msg, p.err, p.stderr.String())
		}
		return strings.Contains(p.stderr.String(), `"msg":"`+msg+`"`), "process logs " + msg
	})
	return p
}

func (p *bridgeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *bridgeProc) exitCode() int {
	if p.err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		return exitErr.ExitCode()
	}
	return -1
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// bridge does not exit within a few seconds.
func (p *bridgeProc) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("bridge did not exit within 5s of SIGTERM")
	}
	return p.exitCode()
}

// kill sends SIGKILL and waits for the process to die.
func (p *bridgeProc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// requireExactlyOnce checks that every event in the events table got exactly
// one job of each kind in kinds and nothing else, and that every event is
// recorded as dispatched.
func requireExactlyOnce(t *testing.T, db *testdb.DB, events int, kinds ...string) {
	t.Helper()
	require.Equal(t, events, count(t, db, "SELECT count(*) FROM "+tbl(db, "events")))
	require.Zero(t, count(t, db, "SELECT count(*) FROM (SELECT 1 FROM "+tbl(db, "river_job")+
		" GROUP BY args->>'event_id', kind HAVING count(*) > 1) AS dupes"), "duplicate jobs")
	require.Equal(t, len(kinds)*events, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")+" WHERE NOT kind = ANY($1)", kinds))
	require.Zero(t, count(t, db, `SELECT count(*) FROM `+tbl(db, "events")+` e
		LEFT JOIN (SELECT args->>'event_id' AS id, count(DISTINCT kind) AS kinds FROM `+tbl(db, "river_job")+` GROUP BY 1) j
		ON j.id = e.id::text WHERE coalesce(j.kinds, 0) <> $1`, len(kinds)), "events without one job per route")
	require.Equal(t, events, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch")+
		" WHERE channel = $1 AND outcome = 'dispatched'", db.Channel))
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))
}

func waitDispatched(t *testing.T, db *testdb.DB, n int, timeout time.Duration) {
	t.Helper()
	testdb.WaitFor(t, timeout, func() (bool, string) {
		got := count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch")+" WHERE channel = $1", db.Channel)
		return got == n, fmt.Sprintf("%d of %d events recorded in notified_dispatch", got, n)
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})

	out := mustRun(t, db, "migrate")
	require.Contains(t, out, "schema "+db.Schema+": applied ")
	require.NotContains(t, out, "applied 0 River migration(s)")
	all := notifiedVersions(t)
	require.Contains(t, out, fmt.Sprintf("%d notified migration(s) %v", len(all), all))
	for _, table := range []string{"river_job", "notified_route", "notified_outbox", "notified_dispatch"} {
		require.Equal(t, 1, count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2", db.Schema, table), table)
	}

	out = mustRun(t, db, "migrate")
	require.Equal(t, "schema "+db.Schema+": applied 0 River migration(s) [] and 0 notified migration(s) []\n", out)

	out = mustRun(t, db, "migrate", "--json")
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Equal(t, map[string]any{"schema": db.Schema, "river_versions": []any{}, "versions": []any{}}, res)

	// On a schema not migrated yet, --json lists what it applied.
	fresh := testdb.New(t, testdb.Options{NoMigrate: true})
	var applied struct {
		Schema        string `json:"schema"`
		RiverVersions []int  `json:"river_versions"`
		Versions      []int  `json:"versions"`
	}
	out = mustRun(t, fresh, "migrate", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &applied), out)
	require.Equal(t, fresh.Schema, applied.Schema)
	require.NotEmpty(t, applied.RiverVersions)
	require.Equal(t, all, applied.Versions)
}

func TestMigrateInvalidSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "--schema", "bad-schema!", "migrate")
	requireUserError(t, stderr, code, `--schema / NOTIFIED_SCHEMA "bad-schema!" is not valid`)
	require.Empty(t, stdout)
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'bad-schema!'"))
}

func TestMigrateRefusesSystemSchemas(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	before := count(t, db, "SELECT count(*) FROM pg_class WHERE relnamespace IN ('information_schema'::regnamespace, 'pg_catalog'::regnamespace)")
	systemPath, err := url.Parse(db.URL)
	require.NoError(t, err)
	q := systemPath.Query()
	q.Set("search_path", "information_schema")
	systemPath.RawQuery = q.Encode()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"information_schema", envWithURL(db.URL), []string{"--schema", "information_schema", "migrate"},
			`--schema / NOTIFIED_SCHEMA "information_schema" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
		{"pg_catalog after the command", envWithURL(db.URL), []string{"migrate", "--schema", "pg_catalog"},
			`--schema / NOTIFIED_SCHEMA "pg_catalog" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
		{"NOTIFIED_SCHEMA=pg_temp_1", append(envWithURL(db.URL), "NOTIFIED_SCHEMA=pg_temp_1"), []string{"routes", "list"},
			`--schema / NOTIFIED_SCHEMA "pg_temp_1" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
		{"current schema from the search_path", envWithURL(systemPath.String()), []string{"migrate"},
			`resolve current schema: the connection's current schema (the first existing one of its search_path) is "information_schema", a system schema of Postgres: set --schema / NOTIFIED_SCHEMA, or put a schema of your own first in the search_path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runEnv(t, tc.env, tc.args...)
			requireUserError(t, stderr, code)
			require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr)
			require.Empty(t, stdout)
		})
	}
	t.Cleanup(func() {
		require.Equal(t, before, count(t, db, "SELECT count(*) FROM pg_class WHERE relnamespace IN ('information_schema'::regnamespace, 'pg_catalog'::regnamespace)"),
			"nothing was created in a system schema")
	})
}

func TestEventsTableInASystemSchemaRefused(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	const want = `--table / NOTIFIED_EVENTS_TABLE_NAME "pg_catalog.pg_class" is in "pg_catalog", a system schema of Postgres (information_schema, pg_*): use an events table in a schema of your own`
	for _, args := range [][]string{
		{"install-trigger", "--table", "pg_catalog.pg_class", "--id-field", "oid"},
		{"install-trigger", "--table", "pg_catalog.pg_class", "--id-field", "oid", "--print"},
		{"run", "--table", "pg_catalog.pg_class", "--id-field", "oid", "--name-field", "relname", "--channel", db.Channel},
	} {
		stdout, stderr, code := run(t, db, args...)
		requireUserError(t, stderr, code, want)
		require.Empty(t, stdout)
	}
	stdout, stderr, code := run(t, db, "run", "--table", "information_schema.tables", "--channel", db.Channel)
	requireUserError(t, stderr, code, `--table / NOTIFIED_EVENTS_TABLE_NAME "information_schema.tables" is in "information_schema", a system schema`)
	require.Empty(t, stdout)
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'pg_catalog.pg_class'::regclass"))
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_bridge")), "no bridge registered")
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})

	require.Equal(t, "no routes: add one with `notified-bridge routes add EVENT KIND`\n", mustRun(t, db, "routes", "list"))
	require.Equal(t, "[]\n", mustRun(t, db, "routes", "list", "--json"))

	// Options go before the arguments.
	out := mustRun(t, db, "routes", "add", "--queue", "mail", "--priority", "2", "--max-attempts", "3", "user_signed_up", "send_welcome")
	require.Equal(t, "route added: user_signed_up -> send_welcome (queue mail, priority 2, max attempts 3)\n", out)

	type route struct {
		Event       string `json:"event"`
		Kind        string `json:"kind"`
		Queue       string `json:"queue"`
		Priority    int    `json:"priority"`
		MaxAttempts int    `json:"max_attempts"`
	}
	list := func() []route {
		t.Helper()
		var rs []route
		out := mustRun(t, db, "routes", "list", "--json")
		require.NoError(t, json.Unmarshal([]byte(out), &rs), out)
		return rs
	}
	require.Equal(t, []route{{"user_signed_up", "send_welcome", "mail", 2, 3}}, list())

	table := strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n")
	require.Len(t, table, 2, table)
	require.Equal(t, []string{"EVENT", "KIND", "QUEUE", "PRIORITY", "MAX", "ATTEMPTS", "WHERE", "ORDERED", "BY"}, strings.Fields(table[0]))
	require.Equal(t, []string{"user_signed_up", "send_welcome", "mail", "2", "3", "-", "-"}, strings.Fields(table[1]))

	// Adding again updates the options.
	mustRun(t, db, "routes", "add", "--queue", "urgent", "--priority", "4", "--max-attempts", "10", "user_signed_up", "send_welcome")
	require.Equal(t, []route{{"user_signed_up", "send_welcome", "urgent", 4, 10}}, list())

	// Defaults.
	mustRun(t, db, "routes", "add", "order_placed", "ship_order")
	require.Equal(t, []route{
		{"order_placed", "ship_order", "default", 1, 25},
		{"user_signed_up", "send_welcome", "urgent", 4, 10},
	}, list())

	require.Equal(t, "route removed: user_signed_up -> send_welcome\n", mustRun(t, db, "routes", "remove", "user_signed_up", "send_welcome"))
	require.Equal(t, []route{{"order_placed", "ship_order", "default", 1, 25}}, list())

	_, stderr, code := run(t, db, "routes", "remove", "user_signed_up", "send_welcome")
	requireUserError(t, stderr, code, "no route user_signed_up -> send_welcome")

	_, stderr, code = run(t, db, "routes", "add", "--priority", "9", "e", "h")
	requireUserError(t, stderr, code, "priority 9 is out of range")
	_, stderr, code = run(t, db, "routes", "add", "--queue", "Bad Queue", "e", "h")
	requireUserError(t, stderr, code, `queue "Bad Queue" is invalid`)
	_, stderr, code = run(t, db, "routes", "add", "--max-attempts", "-1", "e", "h")
	requireUserError(t, stderr, code, "max attempts -1 is out of range")
	_, stderr, code = run(t, db, "routes", "add", "--priority", "high", "e", "h")
	requireUserError(t, stderr, code, "priority")
	_, stderr, code = run(t, db, "routes", "add", "--priority", "0", "e", "h")
	requireUserError(t, stderr, code, "priority 0 is out of range")
	_, stderr, code = run(t, db, "routes", "add", "--max-attempts", "0", "e", "h")
	requireUserError(t, stderr, code, "max attempts 0 is out of range")
	_, stderr, code = run(t, db, "routes", "add", "--bogus", "1", "e", "h")
	requireUserError(t, stderr, code, "routes add: flag provided but not defined: -bogus")
	// Options after the arguments are not read: the error says where they go.
	_, stderr, code = run(t, db, "routes", "add", "e", "h", "--queue", "q")
	requireUserError(t, stderr, code, `routes add: "--queue" after the arguments: options go before them`)

	// Wrong argument counts.
	_, stderr, code = run(t, db, "routes", "add", "only_event")
	requireUserError(t, stderr, code, "two arguments")
	_, stderr, code = run(t, db, "routes", "add")
	requireUserError(t, stderr, code, "two arguments")
	_, stderr, code = run(t, db, "routes", "add", "e", "h", "extra")
	requireUserError(t, stderr, code, `unexpected argument "extra"`)
	_, stderr, code = run(t, db, "routes", "remove", "only_event")
	requireUserError(t, stderr, code, "two arguments")

	// None of the failures changed anything.
	require.Equal(t, []route{{"order_placed", "ship_order", "default", 1, 25}}, list())
}

func TestRoutesNotMigrated(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	for _, args := range [][]string{
		{"routes", "list"},
		{"routes", "add", "e", "h"},
		{"routes", "remove", "e", "h"},
	} {
		stdout, stderr, code := run(t, db, args...)
		requireUserError(t, stderr, code, "run `notified-bridge migrate --schema "+db.Schema+"`")
		require.Empty(t, stdout)
	}
}

func TestInstallTrigger(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	triggers := func() int {
		return count(t, db, "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", tbl(db, "events"))
	}
	testdb.Exec(t, db.Pool, "CREATE TABLE "+tbl(db, "x")+" (a int)")
	sentinel := func() {
		t.Helper()
		require.Equal(t, 1, count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'x'", db.Schema),
			"sentinel table x was dropped")
	}

	// --print prints the SQL and installs nothing.
	out := mustRun(t, db, "install-trigger", "--print", "--table", db.Events(), "--channel", db.Channel)
	require.Contains(t, out, "notified_id := NEW.\"id\"::pg_catalog.text;")
	require.Contains(t, out, "pg_catalog.pg_notify('"+db.Channel+"', notified_id)")
	require.Contains(t, out, "AFTER INSERT ON "+tbl(db, "events"))
	require.Contains(t, out, "INSERT INTO "+tbl(db, "notified_outbox"))
	require.Zero(t, triggers())

	// Error cases, each before anything is installed.
	_, stderr, code := run(t, db, "install-trigger", "--table", db.Schema+".no_such_table", "--channel", db.Channel)
	requireUserError(t, stderr, code, "no_such_table", "does not exist")
	_, stderr, code = run(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel, "--id-field", "nope")
	requireUserError(t, stderr, code, "--id-field", `"nope"`)
	for _, hostile := range []string{
		`events"; drop table x; --`,
		`events"; SET search_path TO ` + db.Schema + `; DROP TABLE x; --`,
		`events" (id int); DROP TABLE x; --`,
	} {
		_, stderr, code = run(t, db, "install-trigger", "--table", hostile, "--channel", db.Channel)
		if len(hostile) > 63 {
			requireUserError(t, stderr, code, "longer than 63 bytes, which Postgres truncates")
		} else {
			requireUserError(t, stderr, code, "does not exist")
		}
		sentinel()
	}
	require.Zero(t, triggers())

	// Install, then an insert writes the outbox row and notifies.
	out = mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Contains(t, out, "installed on "+db.Events())
	require.Equal(t, 1, triggers())

	listener, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer listener.Close(ctx)
	_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{db.Channel}.Sanitize())
	require.NoError(t, err)

	id := insertEvent(t, db, "user_signed_up", `{"email": "a@example.com"}`)
	var channel, eventID string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT channel, event_id FROM "+tbl(db, "notified_outbox")).Scan(&channel, &eventID))
	require.Equal(t, db.Channel, channel)
	require.Equal(t, strconv.FormatInt(id, 10), eventID)

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	require.NoError(t, err)
	require.Equal(t, db.Channel, n.Channel)
	require.Equal(t, strconv.FormatInt(id, 10), n.Payload)

	// Installing again replaces the trigger: still one outbox row per insert.
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	require.Equal(t, 1, triggers())
	insertEvent(t, db, "user_signed_up", `{}`)
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))

	// A channel with quotes is a literal, not SQL.
	hostileChannel := `c'); DROP TABLE x; --`
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", hostileChannel)
	sentinel()
	id = insertEvent(t, db, "user_signed_up", `{}`)
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")+" WHERE channel = $1 AND event_id = $2",
		hostileChannel, strconv.FormatInt(id, 10)))
	sentinel()
}

func TestRunDispatchesEvents(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	ctx := context.Background()

	mustRun(t, db, "migrate")
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "--queue", "mail", "--priority", "2", "--max-attempts", "5", "user_signed_up", "send_welcome")
	mustRun(t, db, "routes", "add", "order_placed", "ship_order")

	b := startBridge(t, db)
	signup := insertEvent(t, db, "user_signed_up", `{"email": "a@example.com"}`)
	order := insertEvent(t, db, "order_placed", `{"order": 42}`)
	noise := insertEvent(t, db, "page_viewed", `{}`)

	waitDispatched(t, db, 3, 15*time.Second)
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))

	type job struct {
		kind, queue       string
		priority, maxAtts int
		args              struct {
			EventID   string         `json:"event_id"`
			EventName string         `json:"event_name"`
			Channel   string         `json:"channel"`
			Data      map[string]any `json:"data"`
		}
		meta map[string]map[string]string
	}
	rows, err := db.Pool.Query(ctx, "SELECT kind, queue, priority, max_attempts, args::text, metadata::text FROM "+
		tbl(db, "river_job")+" ORDER BY (args->>'event_id')::bigint")
	require.NoError(t, err)
	var jobs []job
	for rows.Next() {
		var j job
		var args, meta string
		require.NoError(t, rows.Scan(&j.kind, &j.queue, &j.priority, &j.maxAtts, &args, &meta))
		require.NoError(t, json.Unmarshal([]byte(args), &j.args), args)
		require.NoError(t, json.Unmarshal([]byte(meta), &j.meta), meta)
		jobs = append(jobs, j)
	}
	require.NoError(t, rows.Err())
	require.Len(t, jobs, 2)

	want := []struct {
		id                int64
		name, kind, queue string
		priority, maxAtts int
		payload           map[string]any
	}{
		{signup, "user_signed_up", "send_welcome", "mail", 2, 5, map[string]any{"email": "a@example.com"}},
		{order, "order_placed", "ship_order", "default", 1, 25, map[string]any{"order": float64(42)}},
	}
	for i, w := range want {
		j := jobs[i]
		id := strconv.FormatInt(w.id, 10)
		require.Equal(t, w.kind, j.kind)
		require.Equal(t, w.queue, j.queue)
		require.Equal(t, w.priority, j.priority)
		require.Equal(t, w.maxAtts, j.maxAtts)
		require.Equal(t, id, j.args.EventID)
		require.Equal(t, w.name, j.args.EventName)
		require.Equal(t, db.Channel, j.args.Channel)
		require.Equal(t, float64(w.id), j.args.Data["id"])
		require.Equal(t, w.name, j.args.Data["name"])
		require.Equal(t, w.payload, j.args.Data["payload"])
		require.NotEmpty(t, j.args.Data["created_at"])
		require.Len(t, j.args.Data, 4, "data is the whole row: %v", j.args.Data)
		require.Equal(t, map[string]string{"event_id": id, "event_name": w.name, "channel": db.Channel}, j.meta["notified"])
	}
	// The data is exactly the row, created_at included.
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")+" j JOIN "+tbl(db, "events")+
		" e ON e.id::text = j.args->>'event_id' WHERE j.args->'data' = to_jsonb(e)"))

	type dispatch struct {
		id, name, outcome, reason string
		jobs                      []map[string]any
	}
	rows, err = db.Pool.Query(ctx, "SELECT event_id, coalesce(event_name, ''), outcome, coalesce(reason, ''), jobs::text FROM "+
		tbl(db, "notified_dispatch")+" WHERE channel = $1 ORDER BY event_id::bigint", db.Channel)
	require.NoError(t, err)
	var ds []dispatch
	for rows.Next() {
		var d dispatch
		var js string
		require.NoError(t, rows.Scan(&d.id, &d.name, &d.outcome, &d.reason, &js))
		require.NoError(t, json.Unmarshal([]byte(js), &d.jobs), js)
		ds = append(ds, d)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []dispatch{
		{strconv.FormatInt(signup, 10), "user_signed_up", "dispatched", "",
			[]map[string]any{{"kind": "send_welcome", "queue": "mail", "priority": float64(2), "max_attempts": float64(5)}}},
		{strconv.FormatInt(order, 10), "order_placed", "dispatched", "",
			[]map[string]any{{"kind": "ship_order", "queue": "default", "priority": float64(1), "max_attempts": float64(25)}}},
		{strconv.FormatInt(noise, 10), "page_viewed", "unrouted", `no route for event name "page_viewed"`, []map[string]any{}},
	}, ds)
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))

	require.Equal(t, exitTerminate, b.stop(t), "exit code after SIGTERM")
	logs := b.stderr.String()
	require.Contains(t, logs, `"msg":"bridge stopped"`)
	require.NotContains(t, logs, "goroutine")
	// Not on a terminal, the default log format is JSON: one object a line.
	for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		require.True(t, json.Valid([]byte(line)), "log line is not JSON: %q", line)
	}
}

func TestRunDispatchesEventsCommittedWhileDown(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "ping", "pong")

	ctx := context.Background()
	require.NoError(t, insertEvents(ctx, db, "ping", 5))
	require.Equal(t, 5, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))

	// A poll interval of an hour: only the catch-up on start can find them.
	b := startBridge(t, db, "--poll-interval", "1h")
	waitDispatched(t, db, 5, 15*time.Second)
	require.Equal(t, exitTerminate, b.stop(t))
	requireExactlyOnce(t, db, 5, "pong")

	// And again between two runs.
	require.NoError(t, insertEvents(ctx, db, "ping", 7))
	b = startBridge(t, db, "--poll-interval", "1h")
	waitDispatched(t, db, 12, 15*time.Second)
	require.Equal(t, exitTerminate, b.stop(t))
	requireExactlyOnce(t, db, 12, "pong")
}

func TestRunConfigErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	runArgs := func(extra ...string) []string {
		return append([]string{"--schema", db.Schema, "run", "--table", db.Events(), "--channel", db.Channel}, extra...)
	}
	cases := []struct {
		name      string
		env       []string
		args      []string
		fragments []string
	}{
		{"poll interval zero", nil, runArgs("--poll-interval", "0"), []string{"--poll-interval", `"0"`, "not positive"}},
		{"poll interval negative", nil, runArgs("--poll-interval", "-1"), []string{"--poll-interval", `"-1"`, "not positive"}},
		{"poll interval not a number", nil, runArgs("--poll-interval", "abc"), []string{"--poll-interval", `"abc"`}},
		// 0, which bridge.Config reads as its default, is refused by the
		// CLI; every other value is checked by the library.
		{"missing grace zero", nil, runArgs("--missing-grace", "0s"),
			[]string{"--missing-grace or NOTIFIED_MISSING_GRACE is 0s: give a positive value, or leave it unset for the default (30s)"}},
		{"missing grace negative", nil, runArgs("--missing-grace", "-1s"),
			[]string{"--missing-grace / NOTIFIED_MISSING_GRACE -1s is negative: use a duration such as 30s"}},
		{"batch size zero", nil, runArgs("--batch-size", "0"),
			[]string{"--batch-size or NOTIFIED_BATCH_SIZE is 0: give a positive value, or leave it unset for the default (1000)"}},
		{"batch size negative", nil, runArgs("--batch-size", "-1"), []string{"--batch-size / NOTIFIED_BATCH_SIZE -1 is out of range: use 1 to 10000"}},
		{"batch size too large", nil, runArgs("--batch-size", "100000"), []string{"--batch-size / NOTIFIED_BATCH_SIZE 100000 is out of range: use 1 to 10000"}},
		{"concurrency zero", nil, runArgs("--concurrency", "0"),
			[]string{"--concurrency or NOTIFIED_CONCURRENCY is 0: give a positive value, or leave it unset for the default (2)"}},
		{"concurrency zero from env", append(envWithURL(db.URL), "NOTIFIED_CONCURRENCY=0"), runArgs(),
			[]string{"--concurrency or NOTIFIED_CONCURRENCY is 0: give a positive value"}},
		{"concurrency from env", append(envWithURL(db.URL), "NOTIFIED_CONCURRENCY=-3"), runArgs(), []string{"--concurrency / NOTIFIED_CONCURRENCY -3 is out of range: use 1 to 64"}},
		{"table missing", nil, runArgs("--table", db.Schema+".no_such_table"), []string{"no_such_table", "does not exist"}},
		{"name column missing", nil, runArgs("--name-field", "nope"), []string{"--name-field", `"nope"`}},
		{"id column missing", nil, runArgs("--id-field", "nope"), []string{"--id-field", `"nope"`}},
		{"database unreachable", envWithURL("postgres://postgres:s3cret@127.0.0.1:1/test"), runArgs(),
			[]string{"connect to database", "127.0.0.1:1"}},
		{"database does not exist", envWithURL(withDatabase(t, db.URL, "no_such_db_xyz")), runArgs(),
			[]string{"connect to database", "no_such_db_xyz", "does not exist"}},
		{"no database URL", baseEnv(), runArgs(), []string{"DATABASE_URL"}},
		// A bad setting is reported before connecting: no database needed.
		{"bad setting before connecting", envWithURL("postgres://postgres:s3cret@127.0.0.1:1/test"), runArgs("--concurrency", "65"),
			[]string{"--concurrency / NOTIFIED_CONCURRENCY 65 is out of range: use 1 to 64"}},
		{"not migrated", nil, []string{"--schema", testdb.New(t, testdb.Options{NoMigrate: true}).Schema, "run"},
			[]string{"notified-bridge migrate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tc.env
			if env == nil {
				env = envWithURL(db.URL)
			}
			stdout, stderr, code := runEnv(t, env, tc.args...)
			requireUserError(t, stderr, code, tc.fragments...)
			require.NotContains(t, stderr, "s3cret", "the password leaked into the message")
			require.Empty(t, stdout)
		})
	}
}

// withDatabase returns rawURL with its database replaced by name.
func withDatabase(t *testing.T, rawURL, name string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func TestRunSurvivesKill9(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "bulk", "index_it")
	mustRun(t, db, "routes", "add", "bulk", "mail_it")

	const txns, perTx = 30, 100
	const total = txns * perTx
	b := startBridge(t, db, "--batch-size", "50")

	ctx := t.Context()
	killed := make(chan struct{})
	inserted := make(chan error, 1)
	go func() {
		for i := range txns {
			if i == 2*txns/3 {
				// The rest waits for the kill, so that it happens with
				// events still to dispatch.
				select {
				case <-killed:
				case <-ctx.Done():
					inserted <- ctx.Err()
					return
				}
			}
			if err := insertEvents(ctx, db, "bulk", perTx); err != nil {
				inserted <- err
				return
			}
		}
		inserted <- nil
	}()

	dispatched := func() int {
		return count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch"))
	}
	testdb.WaitFor(t, 30*time.Second, func() (bool, string) {
		n := dispatched()
		return n > 0, fmt.Sprintf("%d events dispatched", n)
	})
	b.kill(t)
	close(killed)

	// One snapshot: whatever the killed bridge committed is whole, jobs
	// included.
	var atKill, jobsAtKill int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+tbl(db, "notified_dispatch")+"), (SELECT count(*) FROM "+
		tbl(db, "river_job")+")").Scan(&atKill, &jobsAtKill))
	t.Logf("killed with %d of %d events dispatched", atKill, total)
	require.Positive(t, atKill)
	require.Less(t, atKill, total)
	require.Equal(t, 2*atKill, jobsAtKill)

	require.NoError(t, <-inserted)
	b = startBridge(t, db, "--batch-size", "50")
	testdb.WaitFor(t, 60*time.Second, func() (bool, string) {
		n := dispatched()
		return n == total, fmt.Sprintf("%d of %d events dispatched", n, total)
	})
	require.Equal(t, exitTerminate, b.stop(t))
	requireExactlyOnce(t, db, total, "index_it", "mail_it")
}

func TestNotify(t *testing.T) {
	t.Parallel()
	db := testdb.New(t) // no trigger: only notify announces the event
	mustRun(t, db, "routes", "add", "user_signed_up", "send_welcome")
	id := strconv.FormatInt(insertEvent(t, db, "user_signed_up", `{"email": "a@example.com"}`), 10)
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))

	b := startBridge(t, db)
	out := mustRun(t, db, "notify", "--channel", db.Channel, id)
	require.Equal(t, fmt.Sprintf("notified %s on channel %q\n", id, db.Channel), out)

	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		n := count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")+" WHERE args->>'event_id' = $1 AND kind = 'send_welcome'", id)
		return n == 1, fmt.Sprintf("%d jobs for event %s", n, id)
	})
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch")+
		" WHERE channel = $1 AND event_id = $2 AND outcome = 'dispatched'", db.Channel, id))

	// A flag after the id is refused: options go before the arguments.
	_, stderr, code := run(t, db, "notify", id, "--channel", db.Channel)
	requireUserError(t, stderr, code, `notify: "--channel" after the arguments: options go before them`)

	// Again: notify says the event was dispatched already, writes no
	// outbox row, and gives the replay command; no second job.
	out = mustRun(t, db, "notify", "--channel", db.Channel, id)
	require.Regexp(t, fmt.Sprintf(`^event %s on channel %q was already dispatched at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ \(dispatched, 1 job\): notify does not run its handlers again\n`, id, db.Channel), out)
	require.Contains(t, out, fmt.Sprintf("\n  notified-bridge replay --schema %s --channel %s --id %s --reason 'why it runs again'\n", db.Schema, db.Channel, id))
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		n := count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox"))
		return n == 0, fmt.Sprintf("%d outbox rows left", n)
	})
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_dispatch")))

	// Ids without a row, and payloads that are not ids, are recorded with
	// their outcome and get no job.
	mustRun(t, db, "notify", "--channel", db.Channel, "999999999")
	mustRun(t, db, "notify", "--channel", db.Channel, "not-a-number")
	outcome := func(id string) (string, string) {
		var outcome, reason string
		err := db.Pool.QueryRow(context.Background(), "SELECT outcome, coalesce(reason, '') FROM "+tbl(db, "notified_dispatch")+
			" WHERE channel = $1 AND event_id = $2", db.Channel, id).Scan(&outcome, &reason)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", ""
		}
		require.NoError(t, err)
		return outcome, reason
	}
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		o1, _ := outcome("999999999")
		o2, _ := outcome("not-a-number")
		return o1 != "" && o2 != "", fmt.Sprintf("outcomes %q and %q", o1, o2)
	})
	o, reason := outcome("999999999")
	require.Equal(t, "missing", o)
	require.Contains(t, reason, "no row in "+db.Events())
	o, reason = outcome("not-a-number")
	require.Equal(t, "rejected", o)
	require.Contains(t, reason, "not a valid")
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))

	// A NOTIFY sent by hand, with no outbox row, is dispatched too.
	other := strconv.FormatInt(insertEvent(t, db, "user_signed_up", `{}`), 10)
	testdb.Exec(t, db.Pool, "SELECT pg_notify($1, $2)", db.Channel, other)
	testdb.WaitFor(t, 15*time.Second, func() (bool, string) {
		n := count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")+" WHERE args->>'event_id' = $1", other)
		return n == 1, fmt.Sprintf("%d jobs for hand-notified event %s", n, other)
	})
	require.Equal(t, exitTerminate, b.stop(t))
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))

	_, stderr, code = run(t, db, "notify")
	requireUserError(t, stderr, code, "notify takes one argument")
}

func TestTwoBridges(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "shared", "first")
	mustRun(t, db, "routes", "add", "shared", "second")

	b1 := startBridge(t, db, "--batch-size", "100")
	b2 := startBridge(t, db, "--batch-size", "100")

	const txns, perTx = 20, 100
	const total = txns * perTx
	for range txns {
		require.NoError(t, insertEvents(context.Background(), db, "shared", perTx))
	}
	waitDispatched(t, db, total, 60*time.Second)
	require.Equal(t, exitTerminate, b1.stop(t))
	require.Equal(t, exitTerminate, b2.stop(t))
	requireExactlyOnce(t, db, total, "first", "second")
}
