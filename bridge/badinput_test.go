package bridge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/pgcluster"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// The bad-input matrix of the dispatch path: payloads that are not ids of the
// id column, rows that cannot be dispatched, and a server that refuses
// connections. Each row states the exact outcome and reason recorded in
// notified_dispatch.

// badPayload is one row of a payload matrix.
type badPayload struct {
	name    string
	payload string
	key     string // the event_id it is recorded under
	outcome string
	reason  string
	// eventName and jobs are the row's name and the job kinds, for a
	// payload that is dispatched.
	eventName string
	jobs      []string
	// outboxOnly marks payloads pg_notify refuses (8000 bytes or more):
	// they can only arrive as outbox rows.
	outboxOnly bool
}

// hashedKey is the key a payload longer than bridge.MaxIDLength is recorded
// under: its first prefix bytes (cut on a rune boundary), "...sha256:" and
// the payload's hash.
func hashedKey(payload string, prefix int) string {
	sum := sha256.Sum256([]byte(payload))
	return payload[:prefix] + "...sha256:" + hex.EncodeToString(sum[:])
}

// logRecords returns the JSON log lines of text.
func logRecords(t testing.TB, text string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "log line is not JSON: %q", line)
		out = append(out, rec)
	}
	return out
}

// outcomeLogs returns, per event id, the "event rejected" and "event
// missing" warnings logged for it.
func outcomeLogs(t testing.TB, buf *syncBuffer) map[string][]outcome {
	t.Helper()
	out := map[string][]outcome{}
	for _, rec := range logRecords(t, buf.String()) {
		msg, _ := rec["msg"].(string)
		if msg != "event rejected" && msg != "event missing" {
			continue
		}
		require.Equal(t, "WARN", rec["level"], "%v", rec)
		id, _ := rec["event_id"].(string)
		reason, _ := rec["reason"].(string)
		out[id] = append(out[id], outcome{Outcome: strings.TrimPrefix(msg, "event "), Reason: reason})
	}
	return out
}

// requireNoErrorLogs fails if anything was logged above WARN.
func requireNoErrorLogs(t testing.TB, buf *syncBuffer) {
	t.Helper()
	for _, rec := range logRecords(t, buf.String()) {
		require.NotEqual(t, "ERROR", rec["level"], "error logged: %v", rec)
	}
}

// jsonLogger logs at info and above, as JSON, into buf.
func jsonLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// sendPayloads puts payloads in the outbox (as if announced while no bridge
// ran, an hour ago, so that valid ids without a row are missing at once)
// or sends them with pg_notify, all in one transaction together with the
// good events, which the capture trigger announces. It returns the good
// events' ids.
func sendPayloads(t testing.TB, tb *testBundle, table, via string, payloads []string, goodBefore, goodAfter int) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	insert := func(n int) []string {
		rows, err := tx.Query(ctx, "INSERT INTO "+table+" (name) SELECT 'ok' FROM generate_series(1, $1::int) RETURNING id::text", n)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return ids
	}
	ids := insert(goodBefore)
	switch via {
	case "outbox":
		_, err = tx.Exec(ctx, "INSERT INTO "+tb.DB.Schema+".notified_outbox (channel, event_id, created_at) "+
			"SELECT $1, p, now() - interval '1 hour' FROM unnest($2::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i", tb.DB.Channel, payloads)
	case "pg_notify":
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, i) ORDER BY i", tb.DB.Channel, payloads)
	default:
		t.Fatalf("unknown way %q", via)
	}
	require.NoError(t, err)
	ids = append(ids, insert(goodAfter)...)
	require.NoError(t, tx.Commit(ctx))
	return ids
}

// runPayloadMatrix sends every payload of cases in one batch with good
// events around them, then checks the exact outcome of each, that the good
// events got their jobs and that the bridge still runs.
func runPayloadMatrix(t *testing.T, tb *testBundle, table, via string, cases []badPayload) {
	t.Helper()
	ctx := context.Background()
	tb.Route(t, "ok", "k")
	var logs syncBuffer
	cfg := tb.Config
	cfg.Logger = jsonLogger(&logs)

	var payloads []string
	var sent []badPayload
	for _, c := range cases {
		if via == "pg_notify" && c.outboxOnly {
			continue
		}
		sent = append(sent, c)
		payloads = append(payloads, c.payload)
	}
	var b *bridge.Bridge
	var sigs *bridge.Signals
	var good []string
	if via == "outbox" {
		// Everything is in the outbox before the bridge starts: its first
		// drain takes it all in one batch.
		good = sendPayloads(t, tb, table, via, payloads, 2, 1)
		b, sigs = tb.startWatched(t, cfg)
	} else {
		b, sigs = tb.startWatched(t, cfg)
		good = sendPayloads(t, tb, table, via, payloads, 2, 1)
	}

	want := map[string]outcome{}
	wantLogs := map[string][]outcome{}
	jobs := map[string][]string{}
	dispatched := len(good)
	ignored := 0
	for _, c := range sent {
		if via == "pg_notify" && (c.outcome == "missing" || c.outcome == "rejected") {
			// A notification that names no event is counted, not
			// recorded: any role can NOTIFY.
			ignored++
			continue
		}
		_, dup := want[c.key]
		require.False(t, dup, "two cases recorded under %q", c.key)
		want[c.key] = outcome{Outcome: c.outcome, Reason: c.reason, Name: c.eventName}
		if c.outcome == "missing" || c.outcome == "rejected" {
			wantLogs[c.key] = []outcome{{Outcome: c.outcome, Reason: c.reason}}
		}
		if c.jobs != nil {
			jobs[c.key] = c.jobs
			dispatched++
		}
	}
	for _, id := range good {
		want[id] = outcome{Outcome: "dispatched", Name: "ok"}
		jobs[id] = []string{"k"}
	}
	tb.WaitRecorded(t, len(want))
	waitAccounted(t, sigs, len(want))
	waitIgnored(t, sigs, ignored)
	got := tb.Outcomes(t)
	for _, c := range sent {
		if _, ok := want[c.key]; ok {
			require.Equal(t, want[c.key], got[c.key], "case %s: payload %q", c.name, c.payload)
		}
	}
	require.Equal(t, want, got, "every event recorded once, under its canonical key, and nothing else")
	tb.requireExactlyOnce(t, jobs)
	if via == "outbox" {
		st := b.Stats()
		require.Equal(t, int64(1), st.Batches, "the good and bad events were dispatched in one batch")
		require.Equal(t, int64(dispatched), st.Dispatched)
	}

	// The bridge still runs: a new event is dispatched.
	more := tb.InsertEvents(t, "ok")
	want[more[0]] = outcome{Outcome: "dispatched", Name: "ok"}
	jobs[more[0]] = []string{"k"}
	tb.WaitRecorded(t, len(want))
	waitAccounted(t, sigs, len(want))
	require.Equal(t, want, tb.Outcomes(t))
	tb.requireExactlyOnce(t, jobs)
	require.True(t, b.Listening(), "the bridge stopped listening")
	r, err := b.Ready(ctx)
	require.NoError(t, err, "readiness %+v", r)

	// One warning per rejected or missing event, with its reason; no error.
	require.Equal(t, wantLogs, outcomeLogs(t, &logs))
	requireNoErrorLogs(t, &logs)
}

// TestBadInputPayloadsBigint sends every kind of bad payload for a bigint id
// column in one batch with good events, as outbox rows and as hand-sent
// NOTIFYs.
func TestBadInputPayloadsBigint(t *testing.T) {
	t.Parallel()
	digits1024 := strings.Repeat("7", 1024)
	long1025 := strings.Repeat("8", 1025)
	long7999 := strings.Repeat("x", 7999)
	long8000 := strings.Repeat("y", 8000)
	// 63 ASCII bytes then two-byte runes: byte 64 is inside a rune, so the
	// recorded prefix must stop at 63 bytes to stay valid UTF-8.
	unicodeLong := strings.Repeat("a", 63) + strings.Repeat("é", 600)
	unicodeShort := strings.Repeat("é", 500) // 1000 bytes: quoted to 32 runes
	notBigint := func(quoted string) string { return "payload " + quoted + " is not a valid bigint id" }

	cases := func(table string) []badPayload {
		return []badPayload{
			{name: "letters", payload: "abc", key: "abc", outcome: "rejected", reason: notBigint(`"abc"`)},
			{name: "empty", payload: "", key: "", outcome: "rejected", reason: notBigint(`""`)},
			{name: "blank", payload: "   ", key: "   ", outcome: "rejected", reason: notBigint(`"   "`)},
			{name: "trailing newline", payload: "1\n", key: "1\n", outcome: "rejected", reason: notBigint(`"1\n"`)},
			{name: "negative id without a row", payload: "-5", key: "-5", outcome: "missing",
				reason: "no row in " + table + " with id = -5 after 500ms"},
			{name: "beyond bigint", payload: "99999999999999999999", key: "99999999999999999999", outcome: "rejected",
				reason: `payload "99999999999999999999" is out of range for id column type bigint`},
			{name: "decimal", payload: "1.5", key: "1.5", outcome: "rejected", reason: notBigint(`"1.5"`)},
			{name: "1024 digits", payload: digits1024, key: digits1024, outcome: "rejected",
				reason: `payload "` + digits1024[:64] + `"... (1024 bytes) is out of range for id column type bigint`},
			{name: "1025 bytes", payload: long1025, key: hashedKey(long1025, 64), outcome: "rejected",
				reason: "payload is 1025 bytes, longer than the 1024 bytes an id may have"},
			{name: "7999 bytes", payload: long7999, key: hashedKey(long7999, 64), outcome: "rejected",
				reason: "payload is 7999 bytes, longer than the 1024 bytes an id may have"},
			{name: "8000 bytes", payload: long8000, key: hashedKey(long8000, 64), outcome: "rejected", outboxOnly: true,
				reason: "payload is 8000 bytes, longer than the 1024 bytes an id may have"},
			{name: "long, cut inside a rune", payload: unicodeLong, key: hashedKey(unicodeLong, 63), outcome: "rejected",
				reason: "payload is 1263 bytes, longer than the 1024 bytes an id may have"},
			{name: "long unicode quoted short", payload: unicodeShort, key: unicodeShort, outcome: "rejected",
				reason: notBigint(`"` + strings.Repeat("é", 32) + `"... (1000 bytes)`)},
			{name: "control characters", payload: "\x01\x02\x1f\x7f", key: "\x01\x02\x1f\x7f", outcome: "rejected",
				reason: notBigint(`"\x01\x02\x1f\x7f"`)},
			{name: "high unicode", payload: "\U0010FFFD\uFFFE", key: "\U0010FFFD\uFFFE", outcome: "rejected",
				reason: notBigint(`"\U0010fffd\ufffe"`)},
			{name: "accents", payload: "ünïcødé", key: "ünïcødé", outcome: "rejected", reason: notBigint(`"ünïcødé"`)},
			{name: "emoji", payload: "😀", key: "😀", outcome: "rejected", reason: notBigint(`"😀"`)},
			{name: "uuid", payload: "123e4567-e89b-12d3-a456-426614174000", key: "123e4567-e89b-12d3-a456-426614174000",
				outcome: "rejected", reason: notBigint(`"123e4567-e89b-12d3-a456-426614174000"`)},
			{name: "statement injection", payload: "1; drop table events", key: "1; drop table events", outcome: "rejected",
				reason: notBigint(`"1; drop table events"`)},
			{name: "quote injection", payload: "1' or '1'='1", key: "1' or '1'='1", outcome: "rejected",
				reason: notBigint(`"1' or '1'='1"`)},
		}
	}

	for _, via := range []string{"outbox", "pg_notify"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			table := tb.DB.Events()
			if via == "pg_notify" {
				// Postgres itself refuses a payload of 8000 bytes.
				_, err := tb.DB.Pool.Exec(context.Background(), "SELECT pg_notify($1, $2)", tb.DB.Channel, strings.Repeat("y", 8000))
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				require.Equal(t, "22023", pgErr.Code)
				require.Equal(t, "payload string too long", pgErr.Message)
			}
			runPayloadMatrix(t, tb, table, via, cases(table))
			// The SQL-looking payloads ran nothing: the table is there with
			// exactly the good events.
			require.Equal(t, 4, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+table))
		})
	}
}

// TestBadInputPayloadsUUID sends bad and oddly spelled payloads for a uuid id
// column in one batch with good events, as outbox rows and as hand-sent
// NOTIFYs.
func TestBadInputPayloadsUUID(t *testing.T) {
	t.Parallel()
	const (
		upper     = "6F1C2B4E-9A0D-4E3B-8C7F-0123456789AB" // a row, announced only in upper case
		bare      = "0f1e2d3c4b5a49788796a5b4c3d2e1f0"     // a row, announced without hyphens
		absent    = "{A0B1C2D3-E4F5-4607-8899-AABBCCDDEEFF}"
		upperKey  = "6f1c2b4e-9a0d-4e3b-8c7f-0123456789ab"
		bareKey   = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"
		absentKey = "a0b1c2d3-e4f5-4607-8899-aabbccddeeff"
	)
	notUUID := func(quoted string) string { return "payload " + quoted + " is not a valid uuid id" }
	for _, via := range []string{"outbox", "pg_notify"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			ctx := context.Background()
			table := db.Schema + ".events"
			testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, payload jsonb)")
			// Rows inserted before the trigger exists: only the payloads
			// below announce them.
			testdb.Exec(t, db.Pool, "INSERT INTO "+table+" (id, name) VALUES ($1, 'ok'), ($2, 'ok')", upperKey, bareKey)
			_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: table, Channel: db.Channel})
			require.NoError(t, err)
			tb := &testBundle{&bridgetest.Bundle{DB: db, Config: bridge.Config{Schema: db.Schema, Table: table, Channel: db.Channel,
				PollInterval: 200 * time.Millisecond, MissingGrace: 500 * time.Millisecond, Logger: testLogger(t)}}}

			cases := []badPayload{
				{name: "integer", payload: "42", key: "42", outcome: "rejected", reason: notUUID(`"42"`)},
				{name: "empty", payload: "", key: "", outcome: "rejected", reason: notUUID(`""`)},
				{name: "bad hex digit", payload: "6f1c2b4e-9a0d-4e3b-8c7f-0123456789ag", key: "6f1c2b4e-9a0d-4e3b-8c7f-0123456789ag",
					outcome: "rejected", reason: notUUID(`"6f1c2b4e-9a0d-4e3b-8c7f-0123456789ag"`)},
				{name: "misplaced hyphen", payload: "6f1c2b4e9-a0d-4e3b-8c7f-0123456789ab", key: "6f1c2b4e9-a0d-4e3b-8c7f-0123456789ab",
					outcome: "rejected", reason: notUUID(`"6f1c2b4e9-a0d-4e3b-8c7f-0123456789ab"`)},
				{name: "one digit short", payload: "6f1c2b4e-9a0d-4e3b-8c7f-0123456789a", key: "6f1c2b4e-9a0d-4e3b-8c7f-0123456789a",
					outcome: "rejected", reason: notUUID(`"6f1c2b4e-9a0d-4e3b-8c7f-0123456789a"`)},
				{name: "injection", payload: "1; drop table events", key: "1; drop table events", outcome: "rejected",
					reason: notUUID(`"1; drop table events"`)},
				{name: "absent, braces and upper case", payload: absent, key: absentKey, outcome: "missing",
					reason: "no row in " + table + " with id = " + absentKey + " after 500ms"},
				// Accepted and canonicalized: recorded and dispatched under
				// the lower-case hyphenated form.
				{name: "upper case", payload: upper, key: upperKey, outcome: "dispatched", eventName: "ok", jobs: []string{"k"}},
				{name: "no hyphens", payload: bare, key: bareKey, outcome: "dispatched", eventName: "ok", jobs: []string{"k"}},
			}
			runPayloadMatrix(t, tb, table, via, cases)
			var args string
			require.NoError(t, db.Pool.QueryRow(ctx, "SELECT string_agg(args->>'event_id', ',' ORDER BY args->>'event_id') FROM "+
				db.Schema+".river_job WHERE args->>'event_id' IN ($1, $2)", upperKey, bareKey).Scan(&args))
			require.Equal(t, bareKey+","+upperKey, args, "jobs carry the canonical id")
			require.Equal(t, 6, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+table))
		})
	}
}

// startHooked runs a bridge whose dispatch transactions call hook between
// their steps, until the test ends.
func (tb *testBundle) startHooked(t testing.TB, cfg bridge.Config, hook func(step string) error) *bridge.Bridge {
	t.Helper()
	b, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.NoError(t, err)
	bridge.SetTestHook(b, hook)
	bridgetest.Start(t, b)
	return b
}

// TestBadInputRows covers rows that exist but cannot be dispatched, and rows
// that disappear between their announcement and the dispatch. Each event
// shares its batch with a good one, which is dispatched.
func TestBadInputRows(t *testing.T) {
	t.Parallel()
	type env struct {
		tb     *testBundle
		target string // id of the event under test
		good   string // id of its good neighbour
		sigs   *bridge.Signals
	}
	// insertPair inserts the event under test (name given, NULL when nil)
	// and a good neighbour in one transaction.
	insertPair := func(t *testing.T, tb *testBundle, name *string) (target, good string) {
		t.Helper()
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `WITH t AS (INSERT INTO `+tb.DB.Events()+` (name) VALUES ($1) RETURNING id),
			g AS (INSERT INTO `+tb.DB.Events()+` (name) VALUES ('ok') RETURNING id)
			SELECT (SELECT id::text FROM t), (SELECT id::text FROM g)`, name).Scan(&target, &good))
		return target, good
	}
	deleteRow := func(t testing.TB, tb *testBundle, id string) {
		testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = $1::bigint", id)
	}
	// deleteOnce returns a hook that deletes the target row, from another
	// connection, the first time the dispatch transaction reaches step.
	deleteOnce := func(t testing.TB, e *env, step string) func(string) error {
		var once sync.Once
		return func(s string) error {
			if s == step {
				once.Do(func() { deleteRow(t, e.tb, e.target) })
			}
			return nil
		}
	}
	str := func(s string) *string { return &s }
	missing := func(e *env) outcome {
		return outcome{Outcome: "missing", Reason: "no row in " + e.tb.DB.Events() + " with id = " + e.target + " after 500ms"}
	}

	cases := []struct {
		name string
		// noTrigger: the events are announced by hand, with pg_notify.
		noTrigger bool
		// run inserts the events and runs a bridge.
		run func(t *testing.T, e *env)
		// want is the target's exact outcome; nil when it is not recorded
		// but counted as an ignored notification.
		want func(e *env) outcome
		// rowGone: the target row no longer exists.
		rowGone bool
		// targetJobs: the target gets a job.
		targetJobs bool
	}{
		{
			name: "name is NULL",
			run: func(t *testing.T, e *env) {
				e.tb.Start(t, nil, e.tb.Config)
				e.target, e.good = insertPair(t, e.tb, nil)
			},
			want: func(*env) outcome { return outcome{Outcome: "rejected", Reason: "name column name is NULL"} },
		},
		{
			name: "name is empty",
			run: func(t *testing.T, e *env) {
				e.tb.Start(t, nil, e.tb.Config)
				e.target, e.good = insertPair(t, e.tb, str(""))
			},
			want: func(*env) outcome { return outcome{Outcome: "unrouted", Reason: `no route for event name ""`} },
		},
		{
			name: "name set to NULL before the bridge ran",
			run: func(t *testing.T, e *env) {
				e.target, e.good = insertPair(t, e.tb, str("ok"))
				testdb.Exec(t, e.tb.DB.Pool, "UPDATE "+e.tb.DB.Events()+" SET name = NULL WHERE id = $1::bigint", e.target)
				e.tb.Start(t, nil, e.tb.Config)
			},
			want: func(*env) outcome { return outcome{Outcome: "rejected", Reason: "name column name is NULL"} },
		},
		{
			name: "deleted before the bridge ran",
			run: func(t *testing.T, e *env) {
				e.target, e.good = insertPair(t, e.tb, str("ok"))
				deleteRow(t, e.tb, e.target)
				e.tb.Start(t, nil, e.tb.Config)
			},
			want:    missing,
			rowGone: true,
		},
		{
			name: "deleted between the claim and the fetch",
			run: func(t *testing.T, e *env) {
				e.target, e.good = insertPair(t, e.tb, str("ok"))
				e.tb.startHooked(t, e.tb.Config, deleteOnce(t, e, "claimed"))
			},
			want:    missing,
			rowGone: true,
		},
		{
			// Fetched rows are dispatched with what was read: a delete that
			// commits later does not undo the event.
			name: "deleted after the fetch",
			run: func(t *testing.T, e *env) {
				e.target, e.good = insertPair(t, e.tb, str("ok"))
				e.tb.startHooked(t, e.tb.Config, deleteOnce(t, e, "fetched"))
			},
			want:       func(*env) outcome { return outcome{Outcome: "dispatched", Name: "ok"} },
			rowGone:    true,
			targetJobs: true,
		},
		{
			// A NOTIFY can come from any role: an id with no row is
			// counted and logged, not recorded.
			name:      "hand-sent id of a deleted row",
			noTrigger: true,
			run: func(t *testing.T, e *env) {
				_, e.sigs = e.tb.startWatched(t, e.tb.Config)
				e.target, e.good = insertPair(t, e.tb, str("ok"))
				deleteRow(t, e.tb, e.target)
				e.tb.notify(t, e.target, e.good)
			},
			want:    nil,
			rowGone: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &env{tb: setup(t, setupOpts{NoTrigger: tc.noTrigger})}
			e.tb.Route(t, "ok", "k")
			tc.run(t, e)
			wantRecorded := map[string]outcome{e.good: {Outcome: "dispatched", Name: "ok"}}
			if tc.want != nil {
				wantRecorded[e.target] = tc.want(e)
			} else {
				waitIgnored(t, e.sigs, 1)
			}
			e.tb.WaitRecorded(t, len(wantRecorded))
			require.Equal(t, wantRecorded, e.tb.Outcomes(t))
			jobs := map[string][]string{e.good: {"k"}}
			if tc.targetJobs {
				jobs[e.target] = []string{"k"}
			}
			e.tb.requireExactlyOnce(t, jobs)
			rows := testdb.Count(t, e.tb.DB.Pool, "SELECT count(*) FROM "+e.tb.DB.Events()+" WHERE id = $1::bigint", e.target)
			if tc.rowGone {
				require.Zero(t, rows)
			} else {
				require.Equal(t, 1, rows)
			}
		})
	}
}

// TestBadInputTooManyConnections runs a bridge against a throwaway server
// whose connection slots are all taken: its reconnects are refused with
// "remaining connection slots are reserved", it logs them with a growing
// backoff and no tight loop, and it recovers once slots are free.
func TestBadInputTooManyConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxConns = 10 // of which superuser_reserved_connections (3) only for superusers
	cluster := testdb.Cluster(t, pgcluster.Options{MaxConnections: maxConns})

	roleURL := func(role string) string {
		return strings.Replace(cluster.URL(), "postgres://postgres@", "postgres://"+role+"@", 1)
	}
	// The superuser keeps working in the reserved slots throughout.
	suCfg, err := pgxpool.ParseConfig(cluster.URL())
	require.NoError(t, err)
	suCfg.MaxConns = 2
	su, err := pgxpool.NewWithConfig(ctx, suCfg)
	require.NoError(t, err)
	t.Cleanup(su.Close)
	var reserved int
	require.NoError(t, su.QueryRow(ctx, "SELECT current_setting('superuser_reserved_connections')::int").Scan(&reserved))
	testdb.Exec(t, su, "CREATE ROLE nb_bridge LOGIN")
	testdb.Exec(t, su, "CREATE ROLE nb_filler LOGIN")
	const schema = "notified"
	testdb.Exec(t, su, "CREATE SCHEMA "+schema+" AUTHORIZATION nb_bridge")

	// The bridge's role owns everything it uses: it is not a superuser, so
	// the reserved slots are not for it.
	bcfg, err := pgxpool.ParseConfig(roleURL("nb_bridge"))
	require.NoError(t, err)
	bcfg.MaxConns = 3
	bcfg.ConnConfig.ConnectTimeout = 2 * time.Second
	bpool, err := pgxpool.NewWithConfig(ctx, bcfg)
	require.NoError(t, err)
	t.Cleanup(bpool.Close)
	_, err = migrations.Migrate(ctx, bpool, schema)
	require.NoError(t, err)
	testdb.Exec(t, bpool, "CREATE TABLE "+schema+".events (id bigserial PRIMARY KEY, name text)")
	_, err = trigger.Install(ctx, bpool, trigger.Options{Schema: schema, Table: schema + ".events", Channel: "events"})
	require.NoError(t, err)
	require.NoError(t, routes.NewStore(bpool, schema).Add(ctx, routes.Route{Event: "e", Kind: "k"}))

	var logs syncBuffer
	b, err := bridge.New(ctx, bpool, bridge.Config{Schema: schema, Table: schema + ".events", Channel: "events",
		PollInterval: 500 * time.Millisecond, Concurrency: 1, Logger: jsonLogger(&logs)})
	require.NoError(t, err)
	t.Cleanup(func() { // after the bridge stops
		if t.Failed() {
			t.Logf("bridge log:\n%s", logs.String())
		}
	})
	bridgetest.Run(t, b)
	tb := &testBundle{&bridgetest.Bundle{DB: &testdb.DB{Pool: su, Schema: schema}}}
	insert := func() string {
		var id string
		require.NoError(t, su.QueryRow(ctx, "INSERT INTO "+schema+".events (name) VALUES ('e') RETURNING id::text").Scan(&id))
		return id
	}
	waitReadiness(t, b, 10*time.Second, "ready", func(_ bridge.Readiness, err error) bool { return err == nil })
	first := insert()
	tb.WaitRecorded(t, 1)

	// Take the bridge's connections away and every slot a non-superuser
	// may use. While the slots fill, the role's own limit keeps the bridge
	// from taking one back.
	testdb.Exec(t, su, "ALTER ROLE nb_bridge CONNECTION LIMIT 0")
	testdb.Exec(t, su, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'nb_bridge'")
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := testdb.Count(t, su, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'nb_bridge'")
		return n == 0, fmt.Sprintf("%d backends of the bridge left", n)
	})
	var fillers []*pgx.Conn
	t.Cleanup(func() {
		for _, c := range fillers {
			_ = c.Close(context.Background())
		}
	})
	refused := func(url string) *pgconn.PgError {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		c, err := pgx.Connect(cctx, url)
		if err == nil {
			fillers = append(fillers, c)
			return nil
		}
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "connect %s", url)
		return pgErr
	}
	for len(fillers) <= maxConns {
		pgErr := refused(roleURL("nb_filler"))
		if pgErr == nil {
			continue
		}
		require.Equal(t, "53300", pgErr.Code, "%v", pgErr)
		// The bridge's own refused reconnects hold a slot for the moment
		// they are refused: the slots are full only when a second try,
		// a little later, is refused too.
		time.Sleep(300 * time.Millisecond)
		if pgErr := refused(roleURL("nb_filler")); pgErr != nil {
			break
		}
	}
	require.NotEmpty(t, fillers)
	require.LessOrEqual(t, len(fillers), maxConns-reserved)
	testdb.Exec(t, su, "ALTER ROLE nb_bridge CONNECTION LIMIT -1")
	pgErr := refused(roleURL("nb_bridge"))
	require.NotNil(t, pgErr, "the bridge's role can still connect")
	require.Equal(t, "53300", pgErr.Code)
	require.True(t, strings.HasPrefix(pgErr.Message, "remaining connection slots are reserved for "), "%v", pgErr)

	// An event committed during the outage waits in the outbox.
	windowStart := len(logs.String())
	during := insert()
	r := waitReadiness(t, b, 5*time.Second, "not ready", func(r bridge.Readiness, err error) bool { return err != nil && !r.Listening && !r.Database })
	require.True(t, hasReason(r, `listener is not connected to channel "events"`), "%v", r.Reasons)
	require.True(t, hasReason(r, "database does not answer: "), "%v", r.Reasons)

	// The observation window: the point is how often the bridge tries
	// during a fixed time.
	const window = 3 * time.Second
	time.Sleep(window)
	text := logs.String()
	all, inWindow := logRecords(t, text), logRecords(t, text[windowStart:])

	// retryIn returns the retry_in of each record with msg, in order.
	retryIn := func(recs []map[string]any, msg string) []time.Duration {
		var out []time.Duration
		for _, rec := range recs {
			if rec["msg"] != msg {
				continue
			}
			v, ok := rec["retry_in"].(float64)
			require.True(t, ok, "no retry_in in %v", rec)
			out = append(out, time.Duration(v))
		}
		return out
	}
	const dispatchMsg, listenMsg = "dispatch failed; retrying", "listener disconnected; reconnecting"
	// Every failure is a refused connection, except the first use of a
	// pooled connection that was terminated.
	// Postgres 16 words it "... reserved for roles with the SUPERUSER
	// attribute".
	const refusedText = "FATAL: remaining connection slots are reserved for "
	refusals := map[string]int{}
	for _, rec := range inWindow {
		msg, _ := rec["msg"].(string)
		if msg != dispatchMsg && msg != listenMsg {
			continue
		}
		errText, _ := rec["error"].(string)
		// Once the test's own superuser connections take the reserved
		// slots too, Postgres says "sorry, too many clients already".
		refused := strings.Contains(errText, refusedText) || strings.Contains(errText, "FATAL: sorry, too many clients already")
		if refused && strings.HasSuffix(errText, "(SQLSTATE 53300)") {
			refusals[msg]++
			continue
		}
		require.Contains(t, errText, "terminating connection due to administrator command (SQLSTATE 57P01)", "%v", rec)
	}
	require.Positive(t, refusals[dispatchMsg], "no dispatch refused")
	require.Positive(t, refusals[listenMsg], "no listener connection refused")
	// Bounded: after the first few tries, a dispatch retry waits at least
	// half the poll interval and a listener retry doubles up to 5s.
	dispatchTries, listenTries := retryIn(inWindow, dispatchMsg), retryIn(inWindow, listenMsg)
	t.Logf("in %s: %d dispatch retries %v, %d listener retries %v", window, len(dispatchTries), dispatchTries, len(listenTries), listenTries)
	require.GreaterOrEqual(t, len(dispatchTries), 2)
	require.LessOrEqual(t, len(dispatchTries), 15, "dispatch retries in a tight loop")
	require.GreaterOrEqual(t, len(listenTries), 1)
	require.LessOrEqual(t, len(listenTries), 7, "listener retries in a tight loop")
	// Growing: the n-th consecutive failure waits between half and all of
	// min(100ms << (n-1), ceiling). The bridge had no failure before the
	// outage, so every failure logged counts.
	requireBackoff := func(what string, tries []time.Duration, ceiling time.Duration) {
		t.Helper()
		for i, got := range tries {
			d := min(100*time.Millisecond<<min(i, 10), ceiling)
			require.True(t, got >= d/2 && got <= d, "%s retry %d waits %s, want %s to %s (all: %v)", what, i+1, got, d/2, d, tries)
		}
	}
	requireBackoff("dispatch", retryIn(all, dispatchMsg), 500*time.Millisecond)
	requireBackoff("listener", retryIn(all, listenMsg), 5*time.Second)
	require.GreaterOrEqual(t, dispatchTries[len(dispatchTries)-1], 250*time.Millisecond, "the dispatch backoff reached its ceiling")

	// Free the slots: the bridge recovers by itself and loses nothing.
	for _, c := range fillers {
		require.NoError(t, c.Close(ctx))
	}
	fillers = nil
	waitReadiness(t, b, 15*time.Second, "ready again", func(_ bridge.Readiness, err error) bool { return err == nil })
	after := insert()
	tb.WaitRecorded(t, 3)
	tb.requireExactlyOnce(t, map[string][]string{first: {"k"}, during: {"k"}, after: {"k"}})
}
