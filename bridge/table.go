package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/history"
	"github.com/notified/notified/migrations"
)

// MaxIDLength is the longest id, in bytes, the bridge accepts for a text id
// column. Longer payloads are recorded as rejected.
const MaxIDLength = 1024

// idKind is how the bridge reads an id column's values.
type idKind int

const (
	idInteger idKind = iota // smallint, integer, bigint
	idUUID                  // uuid
	idText                  // text, varchar
)

// eventTable is the events table as found in the catalog.
type eventTable struct {
	ident     string // the quoted, possibly schema-qualified name
	display   string // the name as configured, for messages
	idCol     string // quoted id column
	nameCol   string // quoted name column
	kind      idKind
	typeName  string // the id column's type, as format_type spells it
	oid       uint32 // the table's oid
	idTypeOID uint32 // the id column's type's oid
	minInt    int64
	maxInt    int64
}

// ErrTableNotFound and the other Err* values below are wrapped by the errors
// inspectTable returns, so callers and tests can tell the problems apart.
var (
	ErrTableNotFound  = errors.New("events table not found")
	ErrColumnNotFound = errors.New("column not found")
	ErrIDType         = errors.New("id column type not supported")
	ErrNoPrivilege    = errors.New("no privilege on events table")
)

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CheckTable reports what is wrong, if anything, with the events table and
// its id and name columns (an empty nameColumn is not checked).
func CheckTable(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, table, idColumn, nameColumn string) error {
	_, err := inspectTable(ctx, db, table, idColumn, nameColumn)
	return err
}

// inspectTable checks that the configured table and columns exist and
// returns what the bridge needs to query them.
func inspectTable(ctx context.Context, db queryRower, table, idColumn, nameColumn string) (*eventTable, error) {
	parts, err := ParseTableName(table)
	if err != nil {
		return nil, err
	}
	ident := pgx.Identifier(parts).Sanitize()
	var oid *uint32
	if err := db.QueryRow(ctx, "SELECT to_regclass($1)::oid", ident).Scan(&oid); err != nil {
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
	t := &eventTable{ident: ident, display: table, oid: *oid}
	var canSelect bool
	var role, nsp string
	if err := db.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'SELECT'), current_user::text, n.nspname::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`,
		*oid).Scan(&canSelect, &role, &nsp); err != nil {
		return nil, fmt.Errorf("check privileges on %s: %w", table, err)
	}
	// An unqualified name resolves to pg_catalog first: events is never a
	// system table.
	if migrations.IsSystemSchema(nsp) {
		return nil, fmt.Errorf("%w: %s is %s.%s, a table of Postgres itself: name the events table with its schema",
			migrations.ErrSystemSchema, table, nsp, parts[len(parts)-1])
	}
	if !canSelect {
		return nil, fmt.Errorf("%w: role %q cannot SELECT from %s: GRANT SELECT ON %s TO %s",
			ErrNoPrivilege, role, table, ident, pgx.Identifier{role}.Sanitize())
	}

	var idType, idTypeName string
	err = db.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod), t.typname, a.atttypid
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped`,
		*oid, idColumn).Scan(&idType, &idTypeName, &t.idTypeOID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: table %s has no id column %q: set IDColumn to the column the notification payload names", ErrColumnNotFound, table, idColumn)
	}
	if err != nil {
		return nil, fmt.Errorf("look up id column %q of %s: %w", idColumn, table, err)
	}
	// The type is judged by its oid, not its name: a type of the table
	// owner's called int8 is not bigint, and its cast to text would run
	// in the bridge's fetch.
	if !builtinIDType[t.idTypeOID] || !t.setIDType(idTypeName, idType) {
		return nil, fmt.Errorf("%w: id column %q of %s is %s: use smallint, integer, bigint, uuid, text or varchar", ErrIDType, idColumn, table, idType)
	}
	t.idCol = pgx.Identifier{idColumn}.Sanitize()
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
	t.nameCol = pgx.Identifier{nameColumn}.Sanitize()
	return t, nil
}

// builtinIDType holds the oids of the id column types the bridge supports:
// smallint, integer, bigint, text, varchar, uuid.
var builtinIDType = map[uint32]bool{21: true, 23: true, 20: true, 25: true, 1043: true, 2950: true}

// setIDType sets how ids are parsed from the column's type (pg_type.typname
// and its formatted name), and reports whether the type is supported.
func (t *eventTable) setIDType(typname, formatted string) bool {
	t.typeName = formatted
	switch typname {
	case "int2":
		t.kind, t.minInt, t.maxInt = idInteger, -1<<15, 1<<15-1
	case "int4":
		t.kind, t.minInt, t.maxInt = idInteger, -1<<31, 1<<31-1
	case "int8":
		t.kind, t.minInt, t.maxInt = idInteger, -1<<63, 1<<63-1
	case "uuid":
		t.kind = idUUID
	case "text", "varchar":
		t.kind = idText
	default:
		return false
	}
	return true
}

// fetchSQL selects the rows of the given ids: id as text, name as text and
// the whole row as a JSON object.
func (t *eventTable) fetchSQL() string {
	return "SELECT e." + t.idCol + "::text, e." + t.nameCol + "::text, row_to_json(e)::text FROM " +
		t.ident + " AS e WHERE e." + t.idCol + " = ANY($1::" + t.arrayType() + ")"
}

// Placement of a fetched row, as fetchBoundedSQL's third column says.
const (
	rowInline   = 0 // the row's data is read: its jobs are inserted from the bridge
	rowLarge    = 1 // the row is larger than LargeRowBytes: its jobs are inserted by the server
	rowDeferred = 2 // past the batch's byte budget: it goes back to the outbox
)

// fetchBoundedSQL selects the rows of the ids in $1, in that order, each
// measured in the server before the bridge holds any of it: id as text,
// name as text, its placement, and the whole row as a JSON object only when
// it is inline.
//
// A row is measured twice. Its stored size (pg_column_size of the row, read
// without decompressing anything) comes first and is cheap: a row stored
// in more than $3 bytes is large, and its JSON is not built here at all;
// once the stored sizes so far (large rows counted as $3) pass $2 bytes,
// the rest are deferred and not built either. The JSON of the others is
// then built and measured exactly, as compressed values can be far larger
// than they are stored: JSON over $3 bytes makes the row large, and once
// the JSON so far passes $2 bytes the rest are deferred. The first row is
// never deferred, as $3 <= $2.
func (t *eventTable) fetchBoundedSQL() string {
	return `WITH s AS (
			SELECT k.ord, e AS ev, pg_column_size(e.*) AS stored,
				sum(least(pg_column_size(e.*), $3::bigint)) OVER (ORDER BY k.ord) AS cum
			FROM unnest($1::` + t.arrayType() + `) WITH ORDINALITY AS k(id, ord)
			JOIN ` + t.ident + ` AS e ON e.` + t.idCol + ` = k.id
		), f AS (
			SELECT s.ord, (s.ev).` + t.idCol + `::text AS id, (s.ev).` + t.nameCol + `::text AS name, s.cum, x.j,
				CASE WHEN x.j IS NULL OR octet_length(x.j) > $3::bigint THEN least(s.stored, $3::bigint) ELSE octet_length(x.j) END AS held
			FROM s
			LEFT JOIN LATERAL (
				SELECT row_to_json(s.ev)::text AS j WHERE s.cum <= $2::bigint AND s.stored <= $3::bigint OFFSET 0
			) x ON true
		), g AS (
			SELECT id, name, j, cum, sum(held) OVER (ORDER BY ord) AS cum2 FROM f
		)
		SELECT id, name,
			CASE WHEN cum > $2::bigint OR cum2 > $2::bigint THEN 2
				WHEN j IS NULL OR octet_length(j) > $3::bigint THEN 1 ELSE 0 END,
			CASE WHEN cum <= $2::bigint AND cum2 <= $2::bigint AND octet_length(j) <= $3::bigint THEN j END
		FROM g`
}

// insertLargeSQL inserts the jobs of one large row without the row leaving
// the server: one job per route given in $6..$9, whose args are the same
// Payload the bridge would build ($2..$4 and the row as data), with
// metadata $5. River's own clients for other languages insert jobs with
// SQL in the same way.
func (t *eventTable) insertLargeSQL(riverJob string) string {
	return `INSERT INTO ` + riverJob + ` (args, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
		SELECT jsonb_build_object('event_id', $2::text, 'event_name', $3::text, 'channel', $4::text, 'data', row_to_json(e)::jsonb),
			r.kind, r.max_attempts, $5::jsonb, r.priority, r.queue, now(), 'available', '{}'
		FROM ` + t.ident + ` AS e,
			unnest($6::text[], $7::text[], $8::smallint[], $9::smallint[]) AS r(kind, queue, priority, max_attempts)
		WHERE e.` + t.idCol + ` = $1::` + strings.TrimSuffix(t.arrayType(), "[]")
}

// arrayType is the type of an array of parsed ids, as a parameter.
func (t *eventTable) arrayType() string {
	switch t.kind {
	case idInteger:
		return "bigint[]"
	case idUUID:
		return "uuid[]"
	}
	return "text[]"
}

// parseID returns the canonical text of a payload as an id of this table
// (the text Postgres gives for id::text), or why it is not one.
func (t *eventTable) parseID(payload string) (string, error) {
	if len(payload) > MaxIDLength {
		return "", fmt.Errorf("payload is %d bytes, longer than the %d bytes an id may have", len(payload), MaxIDLength)
	}
	switch t.kind {
	case idInteger:
		n, err := strconv.ParseInt(payload, 10, 64)
		if err != nil {
			var numErr *strconv.NumError
			if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
				return "", fmt.Errorf("payload %s is out of range for id column type %s", quoteShort(payload), t.typeName)
			}
			return "", fmt.Errorf("payload %s is not a valid %s id", quoteShort(payload), t.typeName)
		}
		if n < t.minInt || n > t.maxInt {
			return "", fmt.Errorf("payload %s is out of range for id column type %s", quoteShort(payload), t.typeName)
		}
		// Most payloads are canonical already: keep them, with no copy.
		var buf [20]byte
		if canonical := strconv.AppendInt(buf[:0], n, 10); string(canonical) != payload {
			return string(canonical), nil
		}
		return payload, nil
	case idUUID:
		u, ok := canonicalUUID(payload)
		if !ok {
			return "", fmt.Errorf("payload %s is not a valid uuid id", quoteShort(payload))
		}
		return u, nil
	default:
		if payload == "" {
			return "", errors.New("payload is empty")
		}
		return payload, nil
	}
}

// canonicalUUID accepts the forms Postgres' uuid input accepts most often
// (hyphenated or not, upper or lower case, optionally in braces) and returns
// the lower-case hyphenated form.
func canonicalUUID(s string) (string, bool) {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var hexDigits []byte
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		hexDigits = []byte(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
	} else if len(s) == 32 {
		hexDigits = []byte(s)
	} else {
		return "", false
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], hexDigits); err != nil {
		return "", false
	}
	h := hex.EncodeToString(raw[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// quoteShort quotes s for a message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncate(s, 64)) + fmt.Sprintf("... (%d bytes)", len(s))
}

// recordKey is the key a payload is recorded under in notified_dispatch:
// the payload itself, or for one longer than MaxIDLength a prefix and its
// SHA-256, so the key always fits in the primary key's index.
func recordKey(payload string) string {
	if len(payload) <= MaxIDLength {
		return payload
	}
	sum := sha256.Sum256([]byte(payload))
	return truncate(payload, 64) + "...sha256:" + hex.EncodeToString(sum[:])
}

// EventRow is one row of the events table, as LookupEvent reads it.
type EventRow struct {
	// ID is the canonical text of the id, as the bridge records it.
	ID string
	// Found says whether the row exists.
	Found bool
	// Name is the value of the name column.
	Name *string
	// Data is the row as a JSON object.
	Data json.RawMessage
}

// LookupEvent reads the row of the configured events table whose id is
// payload.
func LookupEvent(ctx context.Context, db queryRower, cfg Config, payload string) (*EventRow, error) {
	cfg = cfg.withDefaults()
	t, err := inspectTable(ctx, db, cfg.Table, cfg.IDColumn, cfg.NameColumn)
	if err != nil {
		return nil, err
	}
	id, err := t.parseID(payload)
	if err != nil {
		return nil, err
	}
	ev := &EventRow{ID: id}
	var gotID string
	var data []byte
	err = db.QueryRow(ctx, t.fetchSQL(), []string{id}).Scan(&gotID, &ev.Name, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ev, nil
	case err != nil:
		return nil, fmt.Errorf("fetch event %s from %s: %w", id, t.display, err)
	}
	ev.Found, ev.Data = true, data
	return ev, nil
}

// EventView is one event as the CLI and the web UI show it: its history, and
// its row as it is now, when the events table can be read.
type EventView struct {
	// Event is the event's history. Its Data is the row's current data, and
	// its Name the row's name when the event was not dispatched yet.
	Event *history.Event
	// Row is the events table's row, or nil when RowErr says why it could
	// not be read.
	Row    *EventRow
	RowErr error
}

// ViewEvent reads the history of the event announced as payload on cfg's
// channel and merges in its row. The payload is read as an id of the events
// table (042 is event 42) when the table can be read, as it is otherwise.
// It returns history.ErrNotFound when no such event was announced.
func ViewEvent(ctx context.Context, db queryRower, store *history.Store, cfg Config, payload string) (*EventView, error) {
	cfg = cfg.withDefaults()
	row, rowErr := LookupEvent(ctx, db, cfg, payload)
	id := payload
	if rowErr == nil {
		id = row.ID
	}
	ev, err := store.Event(ctx, cfg.Channel, id)
	if err != nil {
		return nil, err
	}
	if row != nil && row.Found {
		ev.Data = row.Data
		if ev.Name == nil { // not dispatched yet: the row knows
			ev.Name = row.Name
		}
	}
	return &EventView{Event: ev, Row: row, RowErr: rowErr}, nil
}
