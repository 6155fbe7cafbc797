// Package ident holds the names notified's configuration gives to database
// objects (its schema, the events table, the NOTIFY channel), their
// defaults, and the rules that make them safe to use quoted in SQL; and the
// random names of scratch schemas and databases (RandomName). It imports
// nothing of notified's or River's, so that every package, the
// producers' publish included, can check a name without linking the bridge.
package ident

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Defaults, kept from the Python listener where it had one.
const (
	DefaultTable      = "events"
	DefaultIDColumn   = "id"
	DefaultNameColumn = "name"
	DefaultChannel    = "events"
)

// schemaRE is what a schema name may look like: River requires letters,
// digits and underscores, and at most 46 characters.
var schemaRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,45}$`)

// SchemaValid reports whether schema has the shape River accepts (letters,
// digits and underscores, at most 46 characters), whatever its meaning.
func SchemaValid(schema string) bool { return schemaRE.MatchString(schema) }

// ErrSystemSchema is wrapped by the errors that refuse one of Postgres' own
// schemas (see IsSystemSchema).
var ErrSystemSchema = errors.New("system schema")

// IsSystemSchema reports whether schema is one Postgres keeps for itself:
// information_schema, or a name starting with pg_ (pg_catalog, pg_toast, and
// the pg_temp_N and pg_toast_temp_N of each session), a prefix CREATE SCHEMA
// refuses as "unacceptable schema name". Names are compared as written, as
// Postgres does for the quoted identifiers notified uses: PG_CATALOG and
// Information_Schema are ordinary schemas, which Postgres lets a role with
// CREATE on the database make.
func IsSystemSchema(schema string) bool {
	return schema == "information_schema" || strings.HasPrefix(schema, "pg_")
}

// ValidateSchema reports whether schema can be used; the empty string means
// the connection's current schema. It refuses the system schemas (see
// IsSystemSchema), where notified's and River's tables have no place.
func ValidateSchema(schema string) error {
	if IsSystemSchema(schema) {
		return fmt.Errorf("Schema %q is a %w of Postgres (information_schema, pg_*): use a schema of your own, such as notified", schema, ErrSystemSchema)
	}
	if schema == "" || schemaRE.MatchString(schema) {
		return nil
	}
	return fmt.Errorf("Schema %q is not valid: use letters, digits and underscores, at most 46 characters, not starting with a digit", schema)
}

// RandomName returns prefix followed by 8 random lowercase hex digits (32
// bits from crypto/rand), for a scratch schema or database that no other run
// or test uses: the demo's, the bench's, each test's. With a prefix of
// letters, digits and underscores of at most 38 characters the result is a
// valid schema name (see SchemaValid).
func RandomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return prefix + hex.EncodeToString(b[:])
}

// Qualify returns the quoted name of notified's table name in schema, or the
// unqualified quoted name when schema is empty.
func Qualify(schema, name string) string {
	if schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

// ValidateChannel reports whether channel can be used as a NOTIFY channel:
// Postgres silently truncates names longer than 63 bytes.
func ValidateChannel(channel string) error {
	if channel == "" {
		return errors.New("Channel is empty: name the NOTIFY channel the producers send on")
	}
	if strings.ContainsRune(channel, 0) {
		return fmt.Errorf("channel %q contains a NUL byte", channel)
	}
	if len(channel) > 63 {
		return fmt.Errorf("channel %q is longer than 63 bytes, which Postgres truncates: use a shorter channel", channel)
	}
	return nil
}

// ParseTableName splits a configured table name into its schema (possibly
// empty) and table parts: "events" or "app.events". Each part is used as
// written, case and punctuation included, and is always quoted. A schema
// part that names one of Postgres' system schemas (see
// IsSystemSchema) is refused with an error wrapping
// ErrSystemSchema: no events table belongs there.
func ParseTableName(name string) ([]string, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("Table is empty: name the events table, as table or schema.table")
	}
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return nil, fmt.Errorf("events table name %q has more than one dot: use table or schema.table", name)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("events table name %q has an empty part: use table or schema.table", name)
		}
		if len(p) > 63 {
			return nil, fmt.Errorf("events table name %q has a part longer than 63 bytes, which Postgres truncates: use the name as it is in the catalog", name)
		}
		if strings.ContainsRune(p, 0) {
			return nil, fmt.Errorf("events table name %q contains a NUL byte", name)
		}
	}
	if len(parts) == 2 && IsSystemSchema(parts[0]) {
		return nil, fmt.Errorf("Table %q is in %q, a %w of Postgres (information_schema, pg_*): use an events table in a schema of your own",
			name, parts[0], ErrSystemSchema)
	}
	return parts, nil
}
