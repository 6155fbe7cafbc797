package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/fuzzcorpus"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/migrations"
)

// tableNameSeeds are events table names as an operator might configure them,
// hostile or careless: SQL in the name, quotes, dots, case, white space,
// control characters, dollar quotes, names at and past Postgres' 63 bytes.
var tableNameSeeds = []string{
	"events", "app.events", "public.events", "Events", "MyEvents", "my-events", "my events",
	`events"; drop table x; --`, `app"."events`, `"events"`, `"`, `""`, `it's`, `back\slash`,
	"a.b.c", "", " ", "\t", ".", "a.", ".a", "a..b", " events", "events ",
	"semi;colon", "--comment", "/*c*/", "$$", "$fn$", "x$notified$", "E'x'", "U&\"x\"",
	"ünïcødé", "事件.表", "😀", "new\nline", "tab\there", "bell\a", "\x1b[2J", "\u202eevil",
	strings.Repeat("e", 63), strings.Repeat("e", 64), strings.Repeat("s", 63) + "." + strings.Repeat("t", 63),
	strings.Repeat("é", 31) + "x", strings.Repeat("é", 32),
	"nul\x00byte", "\xff\xfe",
	"pg_catalog.pg_class", "information_schema.tables", "pg_toast.events", "pg_temp.events", "pg_temp_3.events",
	"pg_toast_temp_3.events", "pg_.events", "PG_CATALOG.events", "Information_Schema.events", "pg.events", "pg_class",
	"information_schema", "app.pg_events",
}

func FuzzParseTableName(f *testing.F) {
	for _, s := range tableNameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		parts, err := bridge.ParseTableName(name)
		dots := strings.Count(name, ".")
		wantOK := strings.TrimSpace(name) != "" && dots <= 1 && !strings.HasPrefix(name, ".") &&
			!strings.HasSuffix(name, ".") && !strings.Contains(name, "..") && !strings.ContainsRune(name, 0)
		// Each part fits in an identifier: Postgres would cut a longer one.
		split := strings.Split(name, ".")
		for _, part := range split {
			wantOK = wantOK && len(part) <= 63
		}
		// No events table lives in a system schema: information_schema, or
		// pg_ and anything (pg_catalog, pg_temp_3), as written.
		system := len(split) == 2 && (split[0] == "information_schema" || strings.HasPrefix(split[0], "pg_"))
		if err != nil {
			require.False(t, wantOK && !system, "%q refused: %v", name, err)
			require.Equal(t, wantOK && system, errors.Is(err, migrations.ErrSystemSchema), "%q: %v", name, err)
			require.True(t, fuzzcorpus.OneLinePrintable(err.Error()), "%q", err.Error())
			return
		}
		require.False(t, system, "%q accepted as %q", name, parts)
		require.True(t, wantOK, "%q accepted as %q", name, parts)
		require.Len(t, parts, dots+1)
		require.Equal(t, name, strings.Join(parts, "."))
		for _, p := range parts {
			require.NotEmpty(t, p)
		}

		// The quoted identifier the bridge puts in its SQL reads back, as
		// Postgres' lexer reads it, as exactly the configured parts: nothing
		// of the name escapes the quotes. (pgx drops NUL bytes, which no
		// identifier can hold; see the report on NUL in names.)
		if strings.ContainsRune(name, 0) {
			return
		}
		ident := pgx.Identifier(parts).Sanitize()
		got, ok := fuzzcorpus.SplitQuotedIdent(ident)
		require.True(t, ok, "%q quotes as %s, which is not a quoted identifier", name, ident)
		require.Equal(t, parts, got, "%q quotes as %s", name, ident)
	})
}

// pgTruncate cuts an identifier as Postgres does (NAMEDATALEN 64): to at
// most 63 bytes, at a character boundary.
func pgTruncate(s string) string {
	if len(s) <= 63 {
		return s
	}
	n := 63
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// TestTableNamesCreateExactlyThatTable takes every accepted name of the
// FuzzParseTableName seed corpus to a real Postgres: CREATE TABLE with the
// quoted identifier creates exactly one relation, named as configured, that
// to_regclass finds and eventstable.Spec.Inspect accepts, and a sentinel table
// survives. Each name is tried in a transaction that is rolled back.
func TestTableNamesCreateExactlyThatTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	conn := testdb.SearchPathConn(t, db) // unqualified names land in db.Schema
	ctx := context.Background()
	_, err := conn.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (42)")
	require.NoError(t, err)

	names := append([]string(nil), tableNameSeeds...)
	for _, vals := range fuzzcorpus.Read(t, "FuzzParseTableName") {
		names = append(names, vals[0].(string))
	}
	tried := 0
	for _, name := range names {
		parts, err := bridge.ParseTableName(name)
		if err != nil || !fuzzcorpus.PGStorable(name) {
			continue
		}
		tried++
		schema, rel := db.Schema, parts[len(parts)-1]
		if len(parts) == 2 {
			schema = parts[0]
		}
		func() {
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			ident := pgx.Identifier(parts).Sanitize()
			// A schema of the name's own is created in the transaction, so
			// nothing else can appear in it; a shared one (public) is only
			// looked at for the new table. A name that exists already (x,
			// public.events) is not tried.
			watched := []string{db.Schema}
			var exists bool
			require.NoError(t, tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname::text = $1)", pgTruncate(schema)).Scan(&exists))
			if !exists {
				_, err := tx.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
				require.NoError(t, err, "name %q", name)
				watched = append(watched, pgTruncate(schema))
			} else {
				var taken bool
				require.NoError(t, tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&taken))
				if taken {
					t.Logf("name %q: exists in this database, not tried", name)
					return
				}
			}
			before := relationsIn(t, tx, watched...)
			idCol, nameCol := idColumnSeeds[tried%len(idColumnSeeds)], nameColumnSeeds[tried%len(nameColumnSeeds)]
			_, err = tx.Exec(ctx, "CREATE TABLE "+ident+" ("+pgx.Identifier{idCol}.Sanitize()+" bigint, "+pgx.Identifier{nameCol}.Sanitize()+" text)")
			require.NoError(t, err, "name %q", name)

			after := relationsIn(t, tx, watched...)
			var added []string
			for r := range after {
				if !before[r] {
					added = append(added, r)
				}
			}
			want := pgTruncate(schema) + "." + pgTruncate(rel)
			if !slices.Contains(watched, pgTruncate(schema)) {
				added = append(added, want) // checked through to_regclass below
			}
			require.Equal(t, []string{want}, added, "CREATE TABLE %s for the name %q", ident, name)
			if pgTruncate(schema) != schema || pgTruncate(rel) != rel {
				// Known: parts longer than 63 bytes are accepted and Postgres
				// cuts them, so the bridge watches the table named by the
				// first 63 bytes (see the report).
				t.Logf("name %q: Postgres created %q", name, want)
			}

			var found *uint32
			require.NoError(t, tx.QueryRow(ctx, "SELECT to_regclass($1)::oid", ident).Scan(&found))
			require.NotNil(t, found, "to_regclass(%s)", ident)
			var foundName string
			require.NoError(t, tx.QueryRow(ctx, "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1", *found).Scan(&foundName))
			require.Equal(t, want, foundName, "to_regclass(%s)", ident)

			// The bridge's own lookups find it, and read its rows, through
			// the same quoting, with hostile column names too.
			spec := eventstable.Spec{Table: name, IDColumn: idCol, NameColumn: nameCol}
			table, err := spec.Inspect(ctx, tx)
			require.NoError(t, err, "%+v", spec)
			ev, err := table.Lookup(ctx, tx, "007")
			require.NoError(t, err, "%+v", spec)
			require.Equal(t, "7", ev.ID)
			require.False(t, ev.Found, "%+v", spec)
			_, err = tx.Exec(ctx, "INSERT INTO "+ident+" VALUES (7, 'e')")
			require.NoError(t, err)
			ev, err = table.Lookup(ctx, tx, "7")
			require.NoError(t, err, "%+v", spec)
			require.True(t, ev.Found, "%+v", spec)
			require.Equal(t, "e", *ev.Name)
			require.JSONEq(t, fmt.Sprintf(`{%q: 7, %q: "e"}`, pgTruncate(idCol), pgTruncate(nameCol)), string(ev.Data))

			var sentinel int
			require.NoError(t, tx.QueryRow(ctx, "SELECT v FROM x").Scan(&sentinel), "sentinel after %q", name)
			require.Equal(t, 42, sentinel)
		}()
	}
	require.Greater(t, tried, 30)
}

// idColumnSeeds and nameColumnSeeds are column names for the events tables
// of TestTableNamesCreateExactlyThatTable, taken in turn.
var (
	idColumnSeeds = []string{"id", `id"; drop table x; --`, "Id", "ïd", "$$", "it's", "$notified$", "new\nline",
		strings.Repeat("i", 63), `"`, "select", "ID "}
	nameColumnSeeds = []string{"name", "Name", `n"; --`, "événement", "--", "na me", strings.Repeat("n", 63),
		"from"}
)

// relationsIn returns schema.name of every relation in the given schemas.
func relationsIn(t *testing.T, tx pgx.Tx, schemas ...string) map[string]bool {
	t.Helper()
	rows, err := tx.Query(context.Background(), `SELECT n.nspname || '.' || c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname::text = ANY($1)`, schemas)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// channelSeeds are NOTIFY channels as configured: the default, names at and
// past 63 bytes, case, quotes, SQL, dollar quotes, white space and unicode.
var channelSeeds = []string{
	"events", "", " ", "Events", "my-events", "my events", "événements", "事件", "😀",
	`events"; drop table x; --`, "it's", `"`, `back\slash`, "$$", "$notified$", "$notified0$",
	"new\nline", "tab\there", "\x1b[2J", "a.b", "--", "/*",
	strings.Repeat("c", 63), strings.Repeat("c", 64), strings.Repeat("é", 31) + "c", strings.Repeat("é", 32),
	"nul\x00byte", "\xff",
}

func FuzzValidateChannel(f *testing.F) {
	for _, s := range channelSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, channel string) {
		err := bridge.ValidateChannel(channel)
		if err != nil {
			require.True(t, channel == "" || len(channel) > 63 || strings.ContainsRune(channel, 0), "%q refused: %v", channel, err)
			require.True(t, fuzzcorpus.OneLinePrintable(err.Error()), "%q", err.Error())
			return
		}
		require.NotEmpty(t, channel)
		require.LessOrEqual(t, len(channel), 63, "Postgres would truncate %q", channel)
		if strings.ContainsRune(channel, 0) {
			return
		}
		// The bridge LISTENs on the quoted channel: it reads back as the
		// channel producers pass to pg_notify.
		got, ok := fuzzcorpus.SplitQuotedIdent(pgx.Identifier{channel}.Sanitize())
		require.True(t, ok)
		require.Equal(t, []string{channel}, got)
	})
}

func FuzzParseInterval(f *testing.F) {
	for _, s := range []string{
		"5", "0.5", "1.5", " 2 ", "+3", "-1", "0", "-0", "0.0000000001", "1e3", "1E-3", ".5", "5.",
		"0x1p-2", "NaN", "Inf", "-Inf", "1e300", "4611686018", "4611686019", "9223372036.854775807",
		"500ms", "2s", "1h30m", "1.5h", "-5s", "0s", "1ns", "2562047h", "2562048h", "5 s", "5sec",
		"", " ", "abc", "1,5", "१", "1.000000001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := bridge.ParseInterval(s)
		ts := strings.TrimSpace(s)
		if err != nil {
			require.Contains(t, err.Error(), strconv.Quote(ts))
			return
		}
		require.Greater(t, d, time.Duration(0), "%q", s)

		if _, ferr := strconv.ParseFloat(ts, 64); ferr != nil {
			// Not a number: a Go duration, read as Go reads it.
			want, derr := time.ParseDuration(ts)
			require.NoError(t, derr)
			require.Equal(t, want, d, "%q", s)
			return
		}
		// A number of seconds is what the same number with an s suffix is
		// as a duration: "1.5" is 1.5s.
		want, derr := time.ParseDuration(ts + "s")
		if derr != nil {
			return // 1e3, 0x1p-2, NaN, Inf: numbers Go durations do not spell
		}
		if d != want {
			// Known (see the report): seconds go through a float64 and are
			// truncated, so some decimals come out short, ".001001" as
			// 1.000999ms. Tolerated up to float64 precision so the fuzzer
			// can look for anything worse; require.Equal once fixed.
			diff := d - want
			if diff < 0 {
				diff = -diff
			}
			require.LessOrEqual(t, diff, max(time.Nanosecond, want>>50), "%q as seconds: %s, as a duration %s", s, fmtDur(d), fmtDur(want))
		}
	})
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%s (%dns)", d, int64(d)) }
