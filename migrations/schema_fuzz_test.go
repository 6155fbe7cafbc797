package migrations_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/fuzzcorpus"
	"github.com/notified/notified/migrations"
)

func FuzzValidateSchema(f *testing.F) {
	for _, s := range []string{
		"", "notified", "public", "_", "_1", "Notified_Schema", "s" + strings.Repeat("x", 45), "s" + strings.Repeat("x", 46),
		"1bad", "bad-schema", "bad schema", "bad.schema", `bad"schema`, "bad'schema", "bad$", "ünïcødé", "notified\n",
		"notified\x00", " notified", "notified;drop schema public", "pg_catalog", "pg_temp", "information_schema",
		"pg_toast", "pg_temp_3", "pg_toast_temp_3", "pg_", "PG_CATALOG", "Information_Schema", "pg", "_pg_catalog",
	} {
		f.Add(s, "notified_outbox")
	}
	f.Add("notified", `table"; drop table x; --`)
	f.Add("notified", "")
	f.Fuzz(func(t *testing.T, schema, name string) {
		err := migrations.ValidateSchema(schema)
		system := schema == "information_schema" || strings.HasPrefix(schema, "pg_")
		if err != nil {
			require.False(t, validSchema(schema) && !system, "%q refused: %v", schema, err)
			require.Equal(t, system, errors.Is(err, migrations.ErrSystemSchema), "%q: %v", schema, err)
			require.True(t, fuzzcorpus.OneLinePrintable(err.Error()), "%q", err.Error())
		} else {
			require.True(t, schema == "" || validSchema(schema) && !system, "%q accepted", schema)
		}

		q := migrations.Qualify(schema, name)
		if err == nil {
			// An accepted schema needs no escaping: it appears as written.
			if schema == "" {
				require.True(t, strings.HasPrefix(q, `"`), "%s", q)
			} else {
				require.True(t, strings.HasPrefix(q, `"`+schema+`".`), "%s", q)
			}
		}
		if strings.ContainsRune(schema+name, 0) {
			return // pgx drops NUL bytes, which no name can hold
		}
		got, ok := fuzzcorpus.SplitQuotedIdent(q)
		require.True(t, ok, "Qualify(%q, %q) = %s", schema, name, q)
		want := []string{schema, name}
		if schema == "" {
			want = want[1:]
		}
		require.Equal(t, want, got, "Qualify(%q, %q) = %s", schema, name, q)
	})
}

// validSchema is River's rule, written out: a letter or underscore, then up
// to 45 letters, digits or underscores, all ASCII.
func validSchema(s string) bool {
	if len(s) == 0 || len(s) > 46 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
