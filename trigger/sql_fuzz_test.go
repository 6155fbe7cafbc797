package trigger_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/fuzzcorpus"
	idents "github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/trigger"
)

// triggerSeeds are trigger options (table, channel, id column, schema) as an
// operator might configure them: defaults, case, punctuation, SQL and
// dollar quotes in every name, control characters, names at the limits.
var triggerSeeds = [][4]string{
	{"events", "events", "id", "notified"},
	{"", "", "", "public"},
	{"app.events", "events", "id", "notified"},
	{`events"; drop table x; --`, `events'); drop table x; --`, `id"; drop table x; --`, "notified"},
	{`app"."events`, `ch"annel`, `"id"`, "notified"},
	{"MyEvents", "MyChannel", "EventID", "Notified_Schema"},
	{"my-events", "my-events", "my-id", "s"},
	{"ünïcødé", "événements", "ïd", "s"},
	{"事件", "😀", "标识", "s"},
	{"$notified$", "$notified$", "$notified0$", "s"},
	{"t", "$$", "$notified$x$notified0$", "s"},
	{"t", "$notified$';$notified$", "id", "s"},
	{"t", "it's", "it's", "s"},
	{"t", `back\slash`, `back\slash\`, "s"},
	{"t", `trailing\`, "id", "s"},
	{"t", "new\nline", "tab\tcol", "s"},
	{"t", "--", "/*", "s"},
	{"t", "a;b", "NEW", "s"},
	{strings.Repeat("t", 63), strings.Repeat("c", 63), strings.Repeat("i", 63), "s" + strings.Repeat("x", 45)},
	{strings.Repeat("t", 64), "c", "id", "s"},
	{"t", strings.Repeat("c", 64), "id", "s"},
	{"t", "c", "id", "s" + strings.Repeat("x", 46)},
	{"a.b.c", "c", "id", "s"},
	{"t", "c", "id", ""},
	{"t", "c", "id", "1bad"},
	{"t", "c", "id", "bad-schema"},
	{"t", "nul\x00byte", "id", "s"},
	{"t", "c", "\xff", "s"},
}

func FuzzTriggerSQL(f *testing.F) {
	for _, s := range triggerSeeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, table, channel, idColumn, schema string) {
		o := trigger.Options{Schema: schema, Table: table, Channel: channel, IDColumn: idColumn}
		sql, err := trigger.SQL(o)

		// Defaults, then what is accepted: a table or schema.table, a
		// resolved schema River accepts, a channel Postgres keeps whole.
		table, channel, idColumn = or(table, "events"), or(channel, "events"), or(idColumn, "id")
		parts, perr := bridge.ParseTableName(table)
		wantOK := perr == nil && schema != "" && idents.SchemaValid(schema) &&
			channel != "" && len(channel) <= 63 && !strings.ContainsRune(channel, 0)
		if err != nil {
			require.False(t, wantOK, "%q refused: %v", o, err)
			return
		}
		require.True(t, wantOK, "%q accepted", o)
		if strings.ContainsRune(table+channel+idColumn, 0) {
			// pgx drops NUL from identifiers and Postgres refuses NUL in
			// SQL text; see the report.
			return
		}

		name := trigger.Name(o)
		require.Regexp(t, `^notified_capture_[0-9a-f]{12}$`, name)

		// The SQL, read as Postgres' lexer reads it, is exactly the
		// statements the trigger needs, every configured name a single
		// quoted identifier or string literal holding that name.
		toks, err := lexSQL(sql)
		require.NoError(t, err, "%q: %s", o, sql)
		fn := []tok{ident(schema), punct("."), ident(name)}
		var tableToks []tok
		for i, p := range parts {
			if i > 0 {
				tableToks = append(tableToks, punct("."))
			}
			tableToks = append(tableToks, ident(p))
		}
		comment := fmt.Sprintf("notified capture trigger for table %s, id column %s, channel %s", table, idColumn, channel)
		want := concat(
			words("CREATE OR REPLACE FUNCTION"), fn, punct("("), punct(")"),
			words("RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path"),
			punct("="), word("pg_catalog"), punct(","), word("pg_temp"), word("AS"), tok{kind: 'd'}, punct(";"),
			words("REVOKE ALL ON FUNCTION"), fn, punct("("), punct(")"), words("FROM PUBLIC"), punct(";"),
			words("COMMENT ON FUNCTION"), fn, punct("("), punct(")"), word("IS"), str(comment), punct(";"),
			words("CREATE OR REPLACE TRIGGER"), ident(name), words("AFTER INSERT ON"), tableToks,
			words("FOR EACH ROW EXECUTE FUNCTION"), fn, punct("("), punct(")"), punct(";"),
		)
		i := slices.IndexFunc(toks, func(t tok) bool { return t.kind == 'd' })
		require.GreaterOrEqual(t, i, 0, "no dollar-quoted body: %s", sql)
		body, tag := toks[i].val, toks[i].tag
		toks[i] = tok{kind: 'd'}
		require.Equal(t, want, toks, "%q: %s", o, sql)

		require.Regexp(t, `^\$notified[0-9]*\$$`, tag)
		require.NotContains(t, body, tag)
		bodyToks, err := lexSQL(body)
		require.NoError(t, err, "body %q", body)
		newID := []tok{word("NEW"), punct("."), ident(idColumn)}
		typeOf := concat(word("pg_catalog"), punct("."), word("pg_typeof"), punct("("), newID, punct(")"))
		wantBody := concat(
			word("DECLARE"), word("notified_id"), word("pg_catalog"), punct("."), word("text"), punct(";"),
			word("BEGIN"),
			word("IF"), typeOf, punct("::"), word("pg_catalog"), punct("."), word("oid"), words("NOT IN"),
			punct("("), num("21"), punct(","), num("23"), punct(","), num("20"), punct(","), num("25"), punct(","),
			num("1043"), punct(","), num("2950"), punct(")"), word("THEN"),
			words("RAISE EXCEPTION"), str("notified capture trigger: id column % of %.% is %, not smallint, integer, bigint, uuid, text or varchar"),
			punct(","), str(pgx.Identifier{idColumn}.Sanitize()), punct(","), word("TG_TABLE_SCHEMA"), punct(","), word("TG_TABLE_NAME"),
			punct(","), typeOf,
			word("USING"), word("ERRCODE"), punct("="), str("datatype_mismatch"), punct(","),
			word("DETAIL"), punct("="), str("The row is not inserted, so that no event goes unrecorded. The trigger converts only these built-in types to text: it runs with the rights of the role that installed it."), punct(","),
			word("HINT"), punct("="), str("Change the column back to one of these types, or install the trigger on a column of one."), punct(";"),
			words("END IF"), punct(";"),
			word("notified_id"), punct(":="), newID, punct("::"), word("pg_catalog"), punct("."), word("text"), punct(";"),
			words("INSERT INTO"), ident(schema), punct("."), ident("notified_outbox"),
			punct("("), word("channel"), punct(","), word("event_id"), punct(")"),
			word("VALUES"), punct("("), str(channel), punct(","), word("notified_id"), punct(")"), punct(";"),
			word("PERFORM"), word("pg_catalog"), punct("."), word("pg_notify"), punct("("), str(channel), punct(","), word("notified_id"), punct(")"), punct(";"),
			words("RETURN NULL"), punct(";"), word("END"),
		)
		require.Equal(t, wantBody, bodyToks, "%q body: %s", o, body)
	})
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// tok is one token of SQL: 'w' a bare word, 'i' a quoted identifier, 's' a
// string literal, 'd' a dollar-quoted string, 'n' an unsigned integer, 'p'
// punctuation. val is the decoded value.
type tok struct {
	kind byte
	val  string
	tag  string // of a dollar-quoted string
}

func word(s string) tok  { return tok{kind: 'w', val: s} }
func ident(s string) tok { return tok{kind: 'i', val: s} }
func str(s string) tok   { return tok{kind: 's', val: s} }
func punct(s string) tok { return tok{kind: 'p', val: s} }
func num(s string) tok   { return tok{kind: 'n', val: s} }

func words(s string) []tok {
	var out []tok
	for _, w := range strings.Fields(s) {
		out = append(out, word(w))
	}
	return out
}

func concat(parts ...any) []tok {
	var out []tok
	for _, p := range parts {
		switch p := p.(type) {
		case tok:
			out = append(out, p)
		case []tok:
			out = append(out, p...)
		}
	}
	return out
}

func identStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func identCont(c byte) bool { return identStart(c) || c >= '0' && c <= '9' || c == '$' }

// lexSQL splits SQL into tokens the way Postgres' scanner does
// (standard_conforming_strings on) for the subset the trigger's SQL may use;
// anything outside that subset, such as a prefixed string (E'..'), a block
// comment or a bare $, is an error.
func lexSQL(s string) ([]tok, error) {
	var out []tok
	adjacent := false // the previous token ends right here
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			adjacent = false
			continue
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return out, nil
			}
			i += j
			continue
		case strings.HasPrefix(s[i:], "/*"):
			return nil, errors.New("block comment")
		case c == '\'' || c == '"':
			if adjacent && out[len(out)-1].kind == 'w' {
				return nil, fmt.Errorf("prefixed literal at %d", i)
			}
			var b strings.Builder
			j := i + 1
			for {
				k := strings.IndexByte(s[j:], c)
				if k < 0 {
					return nil, fmt.Errorf("unterminated %c at %d", c, i)
				}
				b.WriteString(s[j : j+k])
				j += k + 1
				if j < len(s) && s[j] == c {
					b.WriteByte(c)
					j++
					continue
				}
				break
			}
			kind := byte('s')
			if c == '"' {
				kind = 'i'
				if b.Len() == 0 {
					return nil, fmt.Errorf("zero-length identifier at %d", i)
				}
			}
			out = append(out, tok{kind: kind, val: b.String()})
			i = j
		case c == '$':
			if adjacent && out[len(out)-1].kind == 'w' {
				return nil, fmt.Errorf("$ inside a word at %d", i)
			}
			j := i + 1
			if j < len(s) && identStart(s[j]) {
				for j < len(s) && identCont(s[j]) && s[j] != '$' {
					j++
				}
			}
			if j >= len(s) || s[j] != '$' {
				return nil, fmt.Errorf("bare $ at %d", i)
			}
			tag := s[i : j+1]
			end := strings.Index(s[j+1:], tag)
			if end < 0 {
				return nil, fmt.Errorf("unterminated %s at %d", tag, i)
			}
			out = append(out, tok{kind: 'd', val: s[j+1 : j+1+end], tag: tag})
			i = j + 1 + end + len(tag)
		case identStart(c):
			j := i
			for j < len(s) && identCont(s[j]) {
				j++
			}
			out = append(out, word(s[i:j]))
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j < len(s) && (identCont(s[j]) || s[j] == '.') {
				return nil, fmt.Errorf("number followed by %q at %d", s[j], j)
			}
			out = append(out, num(s[i:j]))
			i = j
		case strings.HasPrefix(s[i:], "::"), strings.HasPrefix(s[i:], ":="):
			out = append(out, punct(s[i:i+2]))
			i += 2
		case strings.IndexByte("(),;.=", c) >= 0:
			out = append(out, punct(s[i:i+1]))
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
		adjacent = true
	}
	return out, nil
}

// TestTriggerSQLCorpusInstalls runs the SQL of every accepted entry of the
// FuzzTriggerSQL seed corpus in a real Postgres, with the events table (the
// entry's table name, in the test's schema) holding the entry's id column:
// it creates one function and one trigger and nothing else, a sentinel table
// survives, Install replaces it rather than adding a second, and an insert
// puts one row in the outbox and sends one notification on exactly the
// configured channel.
func TestTriggerSQLCorpusInstalls(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+pgx.Identifier{db.Schema, "x"}.Sanitize()+" (v int)")
	testdb.Exec(t, db.Pool, "INSERT INTO "+pgx.Identifier{db.Schema, "x"}.Sanitize()+" VALUES (42)")

	listener, err := pgx.Connect(ctx, db.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = listener.Close(context.Background()) })
	marker := "marker_" + db.Schema
	_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{marker}.Sanitize())
	require.NoError(t, err)

	entries := append([][4]string(nil), triggerSeeds...)
	for _, v := range fuzzcorpus.Read(t, "FuzzTriggerSQL") {
		entries = append(entries, [4]string{v[0].(string), v[1].(string), v[2].(string), v[3].(string)})
	}
	tried := map[trigger.Options]bool{}
	for _, e := range entries {
		parts, err := bridge.ParseTableName(or(e[0], "events"))
		if err != nil {
			continue
		}
		o := trigger.Options{Schema: db.Schema, Table: db.Schema + "." + parts[len(parts)-1], Channel: or(e[1], "events"), IDColumn: or(e[2], "id")}
		if _, err := trigger.SQL(o); err != nil || tried[o] || !utf8.ValidString(o.Table+o.Channel+o.IDColumn) ||
			strings.ContainsRune(o.Table+o.Channel+o.IDColumn, 0) {
			continue
		}
		tried[o] = true
		installAndInsert(t, db, listener, marker, o)
	}
	require.Greater(t, len(tried), 15)
}

func installAndInsert(t *testing.T, db *testdb.DB, listener *pgx.Conn, marker string, o trigger.Options) {
	t.Helper()
	ctx := context.Background()
	pool := db.Pool
	rel := o.Table[len(db.Schema)+1:]
	table := pgx.Identifier{db.Schema, rel}.Sanitize()
	var exists bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists))
	if exists {
		return // x, notified_outbox, river_job...: not a table to put a trigger on
	}
	testdb.Exec(t, pool, "CREATE TABLE "+table+" ("+pgx.Identifier{o.IDColumn}.Sanitize()+" text PRIMARY KEY)")
	defer testdb.Exec(t, pool, "DROP TABLE "+table)

	name := trigger.Name(o)
	funcsBefore := names(t, db, `SELECT proname::text FROM pg_proc WHERE pronamespace = $1::regnamespace`)
	relsBefore := names(t, db, `SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace`)

	sql, err := trigger.SQL(o)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, sql)
	require.NoError(t, err, "%q: %s", o, sql)

	requireInstalled := func(what string) {
		t.Helper()
		funcs := names(t, db, `SELECT proname::text FROM pg_proc WHERE pronamespace = $1::regnamespace`)
		require.Equal(t, append(slices.Clone(funcsBefore), name), sortedUnion(funcsBefore, funcs), "%s %q: functions", what, o)
		require.Len(t, funcs, len(funcsBefore)+1, "%s %q: functions", what, o)
		require.Equal(t, relsBefore, names(t, db, `SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace`), "%s %q: relations", what, o)
		var triggers []string
		rows, err := pool.Query(ctx, "SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal", table)
		require.NoError(t, err)
		triggers, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{name}, triggers, "%s %q: triggers", what, o)
		var comment string
		require.NoError(t, pool.QueryRow(ctx, "SELECT obj_description($1::regproc, 'pg_proc')", pgx.Identifier{db.Schema, name}.Sanitize()).Scan(&comment))
		require.Equal(t, fmt.Sprintf("notified capture trigger for table %s, id column %s, channel %s", o.Table, o.IDColumn, o.Channel), comment)
		require.Equal(t, 42, testdb.Count(t, pool, "SELECT v FROM "+pgx.Identifier{db.Schema, "x"}.Sanitize()), "sentinel after %q", o)
	}
	requireInstalled("SQL")

	// Names longer than 63 bytes are refused (ParseTableName), so the
	// catalog's spelling is the configured one: Install replaces the
	// trigger SQL made rather than adding a second one.
	_, err = trigger.Install(ctx, pool, o)
	require.NoError(t, err, "%q", o)
	requireInstalled("Install")

	// One insert: one outbox row and one notification, on the channel
	// exactly as configured.
	_, err = listener.Exec(ctx, "LISTEN "+pgx.Identifier{o.Channel}.Sanitize())
	require.NoError(t, err)
	defer func() {
		_, err := listener.Exec(ctx, "UNLISTEN "+pgx.Identifier{o.Channel}.Sanitize())
		require.NoError(t, err)
	}()
	id := "fz-" + randomHex()
	testdb.Exec(t, pool, "INSERT INTO "+table+" VALUES ($1)", id)
	testdb.Exec(t, pool, "SELECT pg_notify($1, $2)", marker, id)
	var got []string
	for {
		n := testdb.NextNotification(t, listener)
		if n.Channel == marker && n.Payload == id {
			break
		}
		if n.Payload == id {
			got = append(got, n.Channel)
		}
	}
	require.Equal(t, []string{o.Channel}, got, "%q: notifications of the inserted row", o)
	rows, err := pool.Query(ctx, "SELECT channel FROM "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+" WHERE event_id = $1", id)
	require.NoError(t, err)
	outbox, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{o.Channel}, outbox, "%q: outbox rows of the inserted row", o)

	testdb.Exec(t, pool, "DROP FUNCTION "+pgx.Identifier{db.Schema, name}.Sanitize()+"() CASCADE")
}

// names runs a query taking the test's schema and returns its text column,
// sorted.
func names(t *testing.T, db *testdb.DB, sql string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), sql, pgx.Identifier{db.Schema}.Sanitize())
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	slices.Sort(out)
	return out
}

// sortedUnion returns before followed by what after adds to it.
func sortedUnion(before, after []string) []string {
	out := slices.Clone(before)
	for _, a := range after {
		if !slices.Contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
