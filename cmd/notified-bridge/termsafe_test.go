package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
)

// Text as producers, workers and whoever else writes to the database could
// leave it, with what acts on a terminal: OSC (retitle) and CSI (clear,
// hide, colour) sequences, BEL, C1 controls (U+009B is CSI on some
// terminals), bidi overrides and isolates, CR, newline and tab; and how the
// human output must show it.
const (
	hostileName    = "order\x1b]0;PWNED\x07\x1b[2J\u009b31m\u202egpj.exe\u2066\r\n\tend"
	escapedName    = `order\x1b]0;PWNED\x07\x1b[2J\u009b31m\u202egpj.exe\u2066\r\n\tend`
	hostileKind    = "ship\x1b[8m\u0085hidden\u2069\tit"
	escapedKind    = `ship\x1b[8m\u0085hidden\u2069\tit`
	hostileError   = "smtp\x1b]0;PWNED\x07 down\u009b2J\u202eko"
	escapedError   = `smtp\x1b]0;PWNED\x07 down\u009b2J\u202eko`
	hostileReason  = "fix\x1b[2J\u202e\rdone"
	escapedReason  = `fix\x1b[2J\u202e\rdone`
	hostileOutput  = "sent\u009b\u202e\u2028"
	escapedOutput  = `sent\u009b\u202e\u2028`
	hostileUnroute = "page\x1b[2J\tviewed"
	escapedUnroute = `page\x1b[2J\tviewed`
	hostileHost    = "host\x1b]0;PWNED\x07\u202e"
	escapedHost    = `host\x1b]0;PWNED\x07\u202e`
	hostileVersion = "v1\x1b[2J\u0090"
	escapedVersion = `v1\x1b[2J\u0090`
	hostileBridge  = "bridge\x1b[1A\t\u2067"
	escapedBridge  = `bridge\x1b[1A\t\u2067`
)

// requireTerminalSafe fails if out holds anything a terminal would act on
// rather than show: a control character other than the newlines that end
// lines, a bidi control, a line separator, or invalid UTF-8.
func requireTerminalSafe(t *testing.T, out string) {
	t.Helper()
	require.True(t, utf8.ValidString(out), "invalid UTF-8 reached the terminal: %q", out)
	for _, r := range out {
		unsafe := r != '\n' && unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
		require.False(t, unsafe, "%U reached the terminal raw in %q", r, out)
	}
}

// mustRunSafe runs a command that must succeed and print only
// terminal-safe text on stdout and stderr, and returns its stdout.
func mustRunSafe(t *testing.T, db *testdb.DB, args ...string) string {
	t.Helper()
	stdout, stderr, code := run(t, db, args...)
	require.Equal(t, 0, code, "notified-bridge %q failed: %s", args, stderr)
	requireTerminalSafe(t, stdout)
	requireTerminalSafe(t, stderr)
	return stdout
}

func TestHumanOutputEscapesDatabaseText(t *testing.T) {
	t.Parallel()
	f := &fixture{db: testdb.New(t)}
	db := f.db
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)

	out := mustRunSafe(t, db, "routes", "add", hostileName, hostileKind)
	require.Equal(t, "route added: "+escapedName+" -> "+escapedKind+" (queue default, priority 1, max attempts 25)\n", out)
	out = mustRunSafe(t, db, "routes", "list")
	require.Equal(t, []string{escapedName, escapedKind, "default", "1", "25", "-", "-"}, line(t, out, escapedName))
	var rs []struct{ Event, Kind string }
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "routes", "list", "--json")), &rs))
	require.Equal(t, []struct{ Event, Kind string }{{hostileName, hostileKind}}, rs, "JSON has the exact values")

	// The bridge dispatches both events as they are.
	ev := strconv.FormatInt(insertEvent(t, db, hostileName, `{"note": "\u009b\u202e"}`), 10)
	unrouted := strconv.FormatInt(insertEvent(t, db, hostileUnroute, `{}`), 10)
	b := startBridge(t, db)
	waitDispatched(t, db, 2, 15*time.Second)
	require.Equal(t, exitTerminate, b.stop(t))
	job := f.job(t, ev, hostileKind)
	f.finalize(t, job, "discarded", hostileError)
	testdb.Exec(t, db.Pool, "UPDATE "+tbl(db, "notified_dispatch")+" SET reason = $2 WHERE event_id = $1", unrouted, hostileReason)
	testdb.Exec(t, db.Pool, "INSERT INTO "+tbl(db, "notified_bridge")+" (id, channel, host, pid, version, poll_interval) VALUES ($1, $2, $3, 4242, $4, '1 hour')",
		hostileBridge, db.Channel, hostileHost, hostileVersion)

	// dead-letters, before the job is replayed: the summary and the table.
	out = f.must(t, "dead-letters")
	requireTerminalSafe(t, out)
	require.True(t, strings.HasPrefix(out, "1 dead letter ("+escapedKind+" 1)\n\n"), out)
	dl := line(t, out, strconv.FormatInt(job, 10), ev, escapedName, escapedKind, "discarded")
	require.Equal(t, `down\u009b2J\u202eko`, dl[len(dl)-1])

	// A replay, for a replay reason and a job output.
	out = mustRunSafe(t, db, f.argv("replay", "--id", ev, "--reason", hostileReason)...)
	require.Equal(t, []string{ev, escapedName, escapedKind}, line(t, out, ev, escapedName))
	replayed := f.job(t, ev, hostileKind)
	require.NotEqual(t, job, replayed)
	testdb.Exec(t, db.Pool, "UPDATE "+tbl(db, "river_job")+` SET state = 'completed', attempt = 1, attempted_at = now(), finalized_at = now(),
		metadata = metadata || jsonb_build_object('output', jsonb_build_object('msg', $2::text)) WHERE id = $1`, replayed, hostileOutput)

	// history: the header, the routes, the row, every job's handler, error,
	// replay reason and output.
	out = f.must(t, "history", ev)
	requireTerminalSafe(t, out)
	require.True(t, strings.HasPrefix(out, "event "+ev+` on channel "`+db.Channel+`": `+escapedName+"\n\n"), out)
	require.Equal(t, []string{"routed", "to", escapedKind}, line(t, out, "routed", "to"))
	require.Contains(t, strings.Join(line(t, out, "current", "row"), " "), `\u009b\u202e`)
	jl := line(t, out, strconv.FormatInt(job, 10), escapedKind, "discarded")
	require.Equal(t, []string{"smtp\\x1b]0;PWNED\\x07", `down\u009b2J\u202eko`}, jl[len(jl)-2:])
	rl := strings.Join(line(t, out, strconv.FormatInt(replayed, 10), escapedKind, "completed"), " ")
	require.Contains(t, rl, escapedReason)
	require.Contains(t, rl, `{"msg": "`+escapedOutput+`"}`)
	var hist eventJSON
	f.mustJSON(t, &hist, "history", ev)
	require.Equal(t, hostileName, *hist.Name, "JSON has the exact values")
	require.Len(t, hist.Jobs, 2)
	require.Equal(t, hostileKind, hist.Jobs[0].Handler)
	require.Equal(t, hostileError, *hist.Jobs[0].LastError)
	require.Equal(t, hostileReason, *hist.Jobs[1].ReplayReason)
	// A skip reason the bridge never writes, as whoever can write the
	// dispatch record could leave it.
	testdb.Exec(t, db.Pool, "UPDATE "+tbl(db, "notified_dispatch")+` SET jobs = jsonb_set(jobs, '{0,skipped}', to_jsonb($2::text)) WHERE event_id = $1`,
		ev, hostileReason)
	out = f.must(t, "history", ev)
	requireTerminalSafe(t, out)
	require.Contains(t, out, escapedKind+" (skipped: "+escapedReason+")")

	out = f.must(t, "history", unrouted)
	requireTerminalSafe(t, out)
	require.True(t, strings.HasPrefix(out, "event "+unrouted+` on channel "`+db.Channel+`": `+escapedUnroute+"\n\n"), out)
	require.Equal(t, []string{"reason", escapedReason}, line(t, out, "reason"))
	f.mustJSON(t, &hist, "history", unrouted)
	require.Equal(t, hostileReason, *hist.Reason)

	// status: handlers, their last error, and the bridges.
	out = f.must(t, "status")
	requireTerminalSafe(t, out)
	hl := line(t, out, escapedKind)
	require.Equal(t, []string{"smtp\\x1b]0;PWNED\\x07", `down\u009b2J\u202eko`}, hl[9:11])
	require.Equal(t, []string{escapedHost, "4242", escapedVersion}, line(t, out, escapedBridge)[1:4])
	var st struct {
		Handlers []struct{ Handler string }
		Bridges  []struct{ ID, Host, Version string }
	}
	f.mustJSON(t, &st, "status")
	require.Equal(t, hostileKind, st.Handlers[0].Handler)
	require.Equal(t, []struct{ ID, Host, Version string }{{hostileBridge, hostileHost, hostileVersion}}, st.Bridges)

	// A dry run plans the same table as the replay.
	out = f.must(t, "replay", "--name", hostileName, "--dry-run")
	requireTerminalSafe(t, out)
	require.Equal(t, []string{ev, escapedName, escapedKind}, line(t, out, ev, escapedName))

	// Errors: one naming the event id as given, and one whose database
	// message carries the event name.
	stdout, stderr, code := run(t, db, f.argv("history", "7\x1b]0;PWNED\x07")...)
	requireUserError(t, stderr, code, `no event 7\x1b]0;PWNED\x07 on channel`)
	requireTerminalSafe(t, stderr)
	require.Empty(t, stdout)
	testdb.Exec(t, db.Pool, "CREATE FUNCTION "+tbl(db, "refuse_job")+`() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused: %', NEW.metadata->'notified'->>'event_name'; END $$`)
	testdb.Exec(t, db.Pool, "CREATE TRIGGER refuse_job BEFORE INSERT ON "+tbl(db, "river_job")+
		" FOR EACH ROW EXECUTE FUNCTION "+tbl(db, "refuse_job")+"()")
	stdout, stderr, code = run(t, db, f.argv("replay", "--id", ev, "--reason", "again")...)
	// An error is kept to one line: its white space runs, the name's CR,
	// newline and tab among them, become one space.
	requireUserError(t, stderr, code, `refused: order\x1b]0;PWNED\x07\x1b[2J\u009b31m\u202egpj.exe\u2066 end (SQLSTATE P0001)`)
	requireTerminalSafe(t, stderr)
	require.Empty(t, stdout)
}

// TestHumanOutputEscapesInvalidUTF8 reads names that are not UTF-8 from a
// SQL_ASCII database, which stores any bytes (a UTF8 one refuses them).
func TestHumanOutputEscapesInvalidUTF8(t *testing.T) {
	t.Parallel()
	pool := testdb.Pool(t)
	ctx := context.Background()
	name := ident.RandomName("t_sql_ascii_")
	testdb.Exec(t, pool, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	db := &testdb.DB{URL: withDatabase(t, testdb.URL(), name), Schema: "app", Channel: "events"}
	mustRun(t, db, "migrate")
	conn, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// Octal escapes write the bytes: the query itself is ASCII.
	_, err = conn.Exec(ctx, `INSERT INTO app.notified_route (event_name, kind) VALUES (E'bad\377\376name', E'kind\351')`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO app.notified_dispatch (channel, event_id, event_name, outcome, reason, notified_at)
		VALUES ('events', '1', E'bad\377\376name', 'unrouted', E'why\200\233', now())`)
	require.NoError(t, err)

	out := mustRunSafe(t, db, "routes", "list")
	require.Equal(t, []string{`bad\xff\xfename`, `kind\xe9`, "default", "1", "25", "-", "-"}, line(t, out, `bad\xff\xfename`))
	out = mustRunSafe(t, db, "history", "--table", "app.no_events_table", "1")
	require.True(t, strings.HasPrefix(out, `event 1 on channel "events": bad\xff\xfename`+"\n\n"), out)
	require.Equal(t, []string{"reason", `why\x80\x9b`}, line(t, out, "reason"))

	// encoding/json writes invalid UTF-8 as U+FFFD: --json stays valid JSON.
	var rs []struct{ Event, Kind string }
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "routes", "list", "--json")), &rs))
	require.Equal(t, []struct{ Event, Kind string }{{"bad\ufffd\ufffdname", "kind\ufffd"}}, rs)
}
