// Package trigger writes the capture trigger that makes events durable.
//
// The trigger keeps the Python listener's wire contract, pg_notify(channel,
// id::text) after every insert, and in the same transaction writes the id to
// notified's outbox, which is what the bridge drains. An event is therefore
// recorded for dispatch exactly when its row commits.
package trigger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/bridge"
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
}

func (o Options) withDefaults() Options {
	if o.Table == "" {
		o.Table = bridge.DefaultTable
	}
	if o.Channel == "" {
		o.Channel = bridge.DefaultChannel
	}
	if o.IDColumn == "" {
		o.IDColumn = bridge.DefaultIDColumn
	}
	return o
}

// Name returns the name of the trigger and of its function for these
// options: notified_capture_ and a hash of table, id column and channel, so
// that names from configuration never need to fit in an identifier.
func Name(o Options) string {
	o = o.withDefaults()
	sum := sha256.Sum256([]byte(o.Table + "\x00" + o.IDColumn + "\x00" + o.Channel))
	return "notified_capture_" + hex.EncodeToString(sum[:6])
}

// SQL returns the statements that install the trigger, for a schema already
// resolved (not empty).
func SQL(o Options) (string, error) {
	o = o.withDefaults()
	if o.Schema == "" {
		return "", fmt.Errorf("trigger SQL needs a resolved schema")
	}
	if err := migrations.ValidateSchema(o.Schema); err != nil {
		return "", err
	}
	parts, err := bridge.ParseTableName(o.Table)
	if err != nil {
		return "", err
	}
	if o.Channel == "" || len(o.Channel) > 63 {
		return "", fmt.Errorf("channel %q must be 1 to 63 bytes long", o.Channel)
	}
	name := Name(o)
	fn := pgx.Identifier{o.Schema, name}.Sanitize()
	table := pgx.Identifier(parts).Sanitize()
	outbox := migrations.Qualify(o.Schema, "notified_outbox")
	id := "NEW." + pgx.Identifier{o.IDColumn}.Sanitize() + "::text"
	channel := literal(o.Channel)

	body := "\nBEGIN\n" +
		"    INSERT INTO " + outbox + " (channel, event_id) VALUES (" + channel + ", " + id + ");\n" +
		"    PERFORM pg_notify(" + channel + ", " + id + ");\n" +
		"    RETURN NULL;\nEND\n"
	tag := dollarTag(body)

	var sb strings.Builder
	fmt.Fprintf(&sb, "-- notified capture trigger: after each insert into %s, record %s in the outbox\n", table, id)
	fmt.Fprintf(&sb, "-- and send pg_notify(%s, %s), in the inserting transaction.\n", channel, id)
	fmt.Fprintf(&sb, "CREATE OR REPLACE FUNCTION %s() RETURNS trigger\nLANGUAGE plpgsql AS %s%s%s;\n\n", fn, tag, body, tag)
	fmt.Fprintf(&sb, "COMMENT ON FUNCTION %s() IS %s;\n\n", fn,
		literal(fmt.Sprintf("notified capture trigger for table %s, id column %s, channel %s", o.Table, o.IDColumn, o.Channel)))
	fmt.Fprintf(&sb, "CREATE OR REPLACE TRIGGER %s\n    AFTER INSERT ON %s\n    FOR EACH ROW EXECUTE FUNCTION %s();\n",
		pgx.Identifier{name}.Sanitize(), table, fn)
	return sb.String(), nil
}

// Install resolves the schema and installs the trigger in one transaction,
// replacing an earlier install for the same table, id column and channel.
// It returns the SQL it ran.
func Install(ctx context.Context, db interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}, o Options) (string, error) {
	var sqlText string
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		schema, err := migrations.ResolveSchema(ctx, tx, o.Schema)
		if err != nil {
			return err
		}
		if err := migrations.Check(ctx, tx, o.Schema); err != nil {
			return err
		}
		if err := bridge.CheckTable(ctx, tx, o.withDefaults().Table, o.withDefaults().IDColumn, ""); err != nil {
			return err
		}
		o.Schema = schema
		sqlText, err = SQL(o)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlText); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("install trigger on %s: %w", o.withDefaults().Table, err)
	}
	return sqlText, nil
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
