package eventstable

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/ident"
)

// IDKind is how the bridge reads an id column's values.
type IDKind int

const (
	IDInteger IDKind = iota // smallint, integer, bigint
	IDUUID                  // uuid
	IDText                  // text, varchar
)

// Table is the events table as found in the catalog: what the bridge, a
// replay and a lookup need to read it.
type Table struct {
	Ident     string // the quoted, possibly schema-qualified name
	Display   string // the name as configured, for messages
	IDCol     string // quoted id column
	NameCol   string // quoted name column (empty when not inspected)
	IDName    string // the id column as configured, for messages
	NameName  string // the name column as configured, for messages
	Kind      IDKind
	TypeName  string // the id column's type, as format_type spells it
	OID       uint32 // the table's oid
	IDTypeOID uint32 // the id column's type's oid
	minInt    int64
	maxInt    int64
}

// ErrTableNotFound and the other Err* values below are wrapped by the errors
// Spec.Inspect returns, so callers and tests can tell the problems apart.
var (
	ErrTableNotFound  = errors.New("events table not found")
	ErrColumnNotFound = errors.New("column not found")
	ErrIDType         = errors.New("id column type not supported")
	ErrNoPrivilege    = errors.New("no privilege on events table")
)

// Spec names an events table and its columns as configured. Empty fields
// mean the defaults.
type Spec struct {
	// Table is the table, optionally schema-qualified ("app.events").
	Table string
	// IDColumn is the column a notification's payload names.
	IDColumn string
	// NameColumn is the column whose value selects the routes; with
	// NoNameColumn it is not checked.
	NameColumn   string
	NoNameColumn bool
}

// Inspect checks that the table and its columns exist, that the role may
// read it and that its id column has a supported type, and returns what is
// needed to query it. Its errors wrap ErrTableNotFound, ErrColumnNotFound,
// ErrIDType, ErrNoPrivilege or ident.ErrSystemSchema.
func (s Spec) Inspect(ctx context.Context, db dbtx.DBTX) (*Table, error) {
	s = s.withDefaults()
	name := s.NameColumn
	if s.NoNameColumn {
		name = ""
	}
	return inspect(ctx, db, s.Table, s.IDColumn, name)
}

func (s Spec) withDefaults() Spec {
	if s.Table == "" {
		s.Table = ident.DefaultTable
	}
	if s.IDColumn == "" {
		s.IDColumn = ident.DefaultIDColumn
	}
	if s.NameColumn == "" {
		s.NameColumn = ident.DefaultNameColumn
	}
	return s
}

// inspect is Spec.Inspect after defaults; an empty nameColumn is not
// checked.
func inspect(ctx context.Context, db dbtx.DBTX, table, idColumn, nameColumn string) (*Table, error) {
	parts, err := ident.ParseTableName(table)
	if err != nil {
		return nil, err
	}
	quoted := pgx.Identifier(parts).Sanitize()
	var oid *uint32
	if err := db.QueryRow(ctx, "SELECT to_regclass($1)::oid", quoted).Scan(&oid); err != nil {
		return nil, fmt.Errorf("look up events table %s: %w", table, err)
	}
	if oid == nil {
		hint := "create it, or set Table to an existing table (schema.table for another schema)"
		var folded *string
		lower := make([]string, len(parts))
		for i, p := range parts {
			lower[i] = strings.ToLower(p)
		}
		if strings.Join(lower, ".") != table {
			_ = db.QueryRow(ctx, "SELECT to_regclass($1)::text", pgx.Identifier(lower).Sanitize()).Scan(&folded)
		}
		if folded != nil {
			hint = fmt.Sprintf("names are case-sensitive here; did you mean %s?", strings.Join(lower, "."))
		}
		return nil, fmt.Errorf("%w: %q does not exist: %s", ErrTableNotFound, table, hint)
	}
	t := &Table{Ident: quoted, Display: table, OID: *oid}
	var canSelect bool
	var role, nsp string
	if err := db.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'SELECT'), current_user::text, n.nspname::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`,
		*oid).Scan(&canSelect, &role, &nsp); err != nil {
		return nil, fmt.Errorf("check privileges on %s: %w", table, err)
	}
	// An unqualified name resolves to pg_catalog first: events is never a
	// system table.
	if ident.IsSystemSchema(nsp) {
		return nil, fmt.Errorf("%w: %s is %s.%s, a table of Postgres itself: name the events table with its schema",
			ident.ErrSystemSchema, table, nsp, parts[len(parts)-1])
	}
	if !canSelect {
		return nil, fmt.Errorf("%w: role %q cannot SELECT from %s: GRANT SELECT ON %s TO %s",
			ErrNoPrivilege, role, table, quoted, pgx.Identifier{role}.Sanitize())
	}

	var idType, idTypeName string
	err = db.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod), t.typname, a.atttypid
		FROM pg_attribute a JOIN pg_type t ON t.OID = a.atttypid
		WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`,
		*oid, idColumn).Scan(&idType, &idTypeName, &t.IDTypeOID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: table %s has no id column %q: set IDColumn to the column the notification payload names", ErrColumnNotFound, table, idColumn)
	}
	if err != nil {
		return nil, fmt.Errorf("look up id column %q of %s: %w", idColumn, table, err)
	}
	// The type is judged by its oid, not its name: a type of the table
	// owner's called int8 is not bigint, and its cast to text would run
	// in the bridge's fetch.
	if !builtinIDType[t.IDTypeOID] || !t.setIDType(idTypeName, idType) {
		return nil, fmt.Errorf("%w: id column %q of %s is %s: use smallint, integer, bigint, uuid, text or varchar", ErrIDType, idColumn, table, idType)
	}
	t.IDCol, t.IDName = pgx.Identifier{idColumn}.Sanitize(), idColumn
	if nameColumn == "" {
		return t, nil
	}

	var nameOK bool
	err = db.QueryRow(ctx, `SELECT true FROM pg_attribute
		WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped`, *oid, nameColumn).Scan(&nameOK)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: table %s has no name column %q: set NameColumn to the column that holds the event name", ErrColumnNotFound, table, nameColumn)
	}
	if err != nil {
		return nil, fmt.Errorf("look up name column %q of %s: %w", nameColumn, table, err)
	}
	t.NameCol, t.NameName = pgx.Identifier{nameColumn}.Sanitize(), nameColumn
	return t, nil
}

// builtinIDType holds the oids of the id column types the bridge supports:
// smallint, integer, bigint, text, varchar, uuid.
var builtinIDType = map[uint32]bool{21: true, 23: true, 20: true, 25: true, 1043: true, 2950: true}

// setIDType sets how ids are parsed from the column's type (pg_type.typname
// and its formatted name), and reports whether the type is supported.
func (t *Table) setIDType(typname, formatted string) bool {
	t.TypeName = formatted
	switch typname {
	case "int2":
		t.Kind, t.minInt, t.maxInt = IDInteger, -1<<15, 1<<15-1
	case "int4":
		t.Kind, t.minInt, t.maxInt = IDInteger, -1<<31, 1<<31-1
	case "int8":
		t.Kind, t.minInt, t.maxInt = IDInteger, -1<<63, 1<<63-1
	case "uuid":
		t.Kind = IDUUID
	case "text", "varchar":
		t.Kind = IDText
	default:
		return false
	}
	return true
}
