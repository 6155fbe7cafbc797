// Package trigger writes the capture trigger that makes events durable.
//
// The trigger keeps the Python listener's wire contract, pg_notify(channel,
// id::text) after every insert, and in the same transaction writes the id to
// notified's outbox, which is what the bridge drains. An event is therefore
// recorded for dispatch exactly when its row commits.
package trigger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/migrations"
)

// Options says where the trigger goes and what it sends.
type Options struct {
	// Schema holds notified's outbox; empty means the connection's current
	// schema.
	Schema string
	// Table is the events table, optionally schema-qualified.
	Table string
	// Channel is the NOTIFY channel.
	Channel string
	// IDColumn is the column whose value is the payload.
	IDColumn string

	// RestartSequence lets Install restart the id column's sequence when
	// ids it will produce are already recorded for Channel (see
	// ErrRecordedIDs): past the largest of them, in the install's
	// transaction.
	RestartSequence bool
	// AllowRecordedIDs lets Install go ahead when ids the id column's
	// sequence will produce are already recorded for Channel: the events
	// that get those ids will be skipped as already dispatched.
	AllowRecordedIDs bool
}

func (o Options) withDefaults() Options {
	if o.Table == "" {
		o.Table = ident.DefaultTable
	}
	if o.Channel == "" {
		o.Channel = ident.DefaultChannel
	}
	if o.IDColumn == "" {
		o.IDColumn = ident.DefaultIDColumn
	}
	return o
}

// Name returns the name of the trigger and of its function for these
// options: notified_capture_ and a hash of table, id column and channel, so
// that names from configuration never need to fit in an identifier. Install
// hashes the table's schema-qualified name as the catalog spells it, so
// Name gives the installed name when Table is schema-qualified.
func Name(o Options) string {
	o = o.withDefaults()
	parts, err := ident.ParseTableName(o.Table)
	if err != nil {
		parts = []string{o.Table}
	}
	return name(parts, o.IDColumn, o.Channel)
}

func name(table []string, idColumn, channel string) string {
	sum := sha256.Sum256([]byte(strings.Join(table, ".") + "\x00" + idColumn + "\x00" + channel))
	return "notified_capture_" + hex.EncodeToString(sum[:6])
}

// SQL returns the statements that install the trigger, for a schema already
// resolved (not empty).
func SQL(o Options) (string, error) {
	o = o.withDefaults()
	parts, err := ident.ParseTableName(o.Table)
	if err != nil {
		return "", err
	}
	return sqlFor(o, parts)
}

func sqlFor(o Options, table []string) (string, error) {
	if o.Schema == "" {
		return "", fmt.Errorf("trigger SQL needs a resolved schema")
	}
	if err := migrations.ValidateSchema(o.Schema); err != nil {
		return "", err
	}
	if err := ident.ValidateChannel(o.Channel); err != nil {
		return "", err
	}
	trg := name(table, o.IDColumn, o.Channel)
	fn := pgx.Identifier{o.Schema, trg}.Sanitize()
	tableIdent := pgx.Identifier(table).Sanitize()
	outbox := migrations.Qualify(o.Schema, "notified_outbox")
	newID := "NEW." + pgx.Identifier{o.IDColumn}.Sanitize()
	channel := literal(o.Channel)

	// The function runs with its owner's rights (see below), and whoever
	// owns the events table can change the id column's type: a cast to
	// text of their own type would run their code with those rights. So
	// before anything else the id's type is checked by OID against the
	// built-in types the bridge reads, whose conversion to text no role
	// but a superuser can redefine, and any other type (a domain, an
	// array, a type of the owner's) fails the insert, rather than the
	// event going unrecorded. Everything after works on the text.
	body := "\nDECLARE\n" +
		"    notified_id pg_catalog.text;\n" +
		"BEGIN\n" +
		"    -- smallint, integer, bigint, text, varchar, uuid\n" +
		"    IF pg_catalog.pg_typeof(" + newID + ")::pg_catalog.oid NOT IN (" + supportedTypeList() + ") THEN\n" +
		"        RAISE EXCEPTION 'notified capture trigger: id column % of %.% is %, not smallint, integer, bigint, uuid, text or varchar',\n" +
		"            " + literal(pgx.Identifier{o.IDColumn}.Sanitize()) + ", TG_TABLE_SCHEMA, TG_TABLE_NAME, pg_catalog.pg_typeof(" + newID + ")\n" +
		"            USING ERRCODE = 'datatype_mismatch',\n" +
		"                DETAIL = 'The row is not inserted, so that no event goes unrecorded. The trigger converts only these built-in types to text: it runs with the rights of the role that installed it.',\n" +
		"                HINT = 'Change the column back to one of these types, or install the trigger on a column of one.';\n" +
		"    END IF;\n" +
		"    notified_id := " + newID + "::pg_catalog.text;\n" +
		"    INSERT INTO " + outbox + " (channel, event_id) VALUES (" + channel + ", notified_id);\n" +
		"    PERFORM pg_catalog.pg_notify(" + channel + ", notified_id);\n" +
		"    RETURN NULL;\nEND\n"
	tag := dollarTag(body)

	// Names from configuration appear only quoted, never in a -- comment,
	// where a newline in them would end the comment.
	var sb strings.Builder
	sb.WriteString("-- notified capture trigger: after each insert, record the id in notified's outbox\n")
	sb.WriteString("-- and send pg_notify(channel, id::text), in the inserting transaction.\n")
	// SECURITY DEFINER: producers insert events with their own role, which
	// need not have any privilege on notified's schema; the function writes
	// the outbox as its owner. Its search_path is pinned so that nothing a
	// producer puts on its own path can stand in for what the body uses
	// (the temporary schema, last, is never searched for functions or
	// operators), and its body converts only built-in types (above).
	fmt.Fprintf(&sb, "CREATE OR REPLACE FUNCTION %s() RETURNS trigger\nLANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp\nAS %s%s%s;\n\n", fn, tag, body, tag)
	fmt.Fprintf(&sb, "REVOKE ALL ON FUNCTION %s() FROM PUBLIC;\n\n", fn)
	fmt.Fprintf(&sb, "COMMENT ON FUNCTION %s() IS %s;\n\n", fn,
		literal(fmt.Sprintf("notified capture trigger for table %s, id column %s, channel %s", strings.Join(table, "."), o.IDColumn, o.Channel)))
	fmt.Fprintf(&sb, "CREATE OR REPLACE TRIGGER %s\n    AFTER INSERT ON %s\n    FOR EACH ROW EXECUTE FUNCTION %s();\n",
		pgx.Identifier{trg}.Sanitize(), tableIdent, fn)
	return sb.String(), nil
}

// supportedTypes are the OIDs of the id column types the trigger converts
// to text: int2, int4, int8, text, varchar and uuid, built-in types whose
// OIDs never change and whose conversion to text only a superuser could
// redefine (a cast needs to own one of its types).
var supportedTypes = []uint32{21, 23, 20, 25, 1043, 2950}

// supportedTypeList returns supportedTypes as a list for NOT IN.
func supportedTypeList() string {
	s := make([]string, len(supportedTypes))
	for i, oid := range supportedTypes {
		s[i] = strconv.FormatUint(uint64(oid), 10)
	}
	return strings.Join(s, ", ")
}

// literal quotes s as an SQL string literal (standard_conforming_strings).
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// dollarTag returns a dollar-quote tag that does not occur in body.
func dollarTag(body string) string {
	tag := "$notified$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$notified%d$", i)
	}
	return tag
}
