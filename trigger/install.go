package trigger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/migrations"
)

// Report says what Apply did, or what Inspect found that Install would do.
// Its Warnings include one for each other trigger on the table that
// notifies the channel on an insert, such as a notify-only trigger from
// before notified: with the capture trigger, each insert then sends two
// notifications.
type Report struct {
	// SQL is the SQL run: the trigger's, then the restart of the id
	// column's sequence, if any.
	SQL string
	// Trigger is the name of the trigger and of its function.
	Trigger string
	// Table is the events table, schema-qualified as the catalog spells it.
	Table string
	// Restart is the restart of the id column's sequence that
	// Options.RestartSequence asked for and the recorded ids needed; nil
	// when there was none.
	Restart *SequenceRestart
	// Warnings say what will become of events whose ids are already
	// recorded for the channel, when Install could not rule it out, or went
	// ahead because of Options.AllowRecordedIDs.
	Warnings []string
}

// Plan checks the options against the database (notified's tables are
// migrated, the table and id column exist, the ids the table will produce
// are not recorded yet; see ErrRecordedIDs) and returns the SQL that
// Install would run, with the schema and the table resolved. db is a pool,
// a connection or a transaction.
func Plan(ctx context.Context, db dbtx.DBTX, o Options) (string, error) {
	r, err := Inspect(ctx, db, o)
	if err != nil {
		return "", err
	}
	return r.SQL, nil
}

// Inspect is Plan, with what else Install would do and warn about.
func Inspect(ctx context.Context, db dbtx.DBTX, o Options) (*Report, error) {
	in, err := resolve(ctx, db, o)
	if err != nil {
		return nil, err
	}
	found, err := in.checkRecorded(ctx, db)
	if err != nil {
		return nil, err
	}
	return in.report(found)
}

// Install installs the trigger in one transaction, replacing an earlier
// install for the same table, id column and channel (however the table was
// spelled). It refuses, with ErrRecordedIDs, a table whose sequence will
// produce ids already recorded for the channel, unless o says what to do
// about them. It returns the SQL it ran.
func Install(ctx context.Context, db dbtx.Beginner, o Options) (string, error) {
	r, err := Apply(ctx, db, o)
	if err != nil {
		return "", err
	}
	return r.SQL, nil
}

// Apply is Install, with a report of what it did and of what will become
// of events whose ids are already recorded for the channel.
func Apply(ctx context.Context, db dbtx.Beginner, o Options) (*Report, error) {
	var r *Report
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		in, err := resolve(ctx, tx, o)
		if err != nil {
			return err
		}
		triggerSQL, err := sqlFor(in.o, in.table)
		if err != nil {
			return err
		}
		// The recorded ids are read before the trigger is created (which
		// locks the table against inserts until commit), so that a
		// re-install does not hold up producers while they are read;
		// inserts meanwhile only move the sequence further from them. A
		// restart is decided after, with the table locked, so that it
		// cannot move the sequence back below ids handed out meanwhile.
		var found *recorded
		if !in.o.RestartSequence {
			if found, err = in.checkRecorded(ctx, tx); err != nil {
				return err
			}
			if r, err = in.report(found); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, triggerSQL); err != nil {
			return err
		}
		if !in.o.RestartSequence {
			return nil
		}
		if found, err = in.checkRecorded(ctx, tx); err != nil {
			return err
		}
		if r, err = in.report(found); err != nil {
			return err
		}
		if r.Restart != nil {
			if _, err := tx.Exec(ctx, r.Restart.SQL()); err != nil {
				return fmt.Errorf("restart sequence %s: %w", r.Restart.Sequence, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("install trigger on %s: %w", o.withDefaults().Table, err)
	}
	return r, nil
}

// InstalledName returns the name Install gives the trigger for o: like Name,
// with the table resolved in the database as the catalog spells it (events
// is public.events).
func InstalledName(ctx context.Context, db dbtx.DBTX, o Options) (string, error) {
	o = o.withDefaults()
	table, err := catalogName(ctx, db, o.Table)
	if err != nil {
		return "", err
	}
	return name(table, o.IDColumn, o.Channel), nil
}

// install is an install resolved against the database.
type install struct {
	o     Options  // defaults applied, Schema resolved
	table []string // schema and name, as the catalog spells them
	col   idColumn
	// notifiers are the table's other triggers that notify the channel on
	// an insert (see notifyTriggers).
	notifiers []notifier
}

// idColumn is what Install knows of the id column.
type idColumn struct {
	typeOID  uint32
	typeName string // as format_type spells it
	// sequence numbers the column (a serial's, an identity's, or the one
	// its default names); nil when none does.
	sequence *sequenceRef
	// installed says the trigger is already on the table: this install
	// replaces it.
	installed bool
}

// sequenceRef names a sequence.
type sequenceRef struct {
	oid   uint32
	ident string // quoted and schema-qualified
}

// resolve checks o against the database: notified's tables are migrated,
// the table exists and its id column has a type the trigger converts.
func resolve(ctx context.Context, db dbtx.DBTX, o Options) (*install, error) {
	o = o.withDefaults()
	if o.RestartSequence && o.AllowRecordedIDs {
		return nil, errors.New("Options.RestartSequence and Options.AllowRecordedIDs exclude each other: restart the sequence past the recorded ids, or let it produce them")
	}
	schema, err := migrations.ResolveSchema(ctx, db, o.Schema)
	if err != nil {
		return nil, err
	}
	if err := migrations.Check(ctx, db, o.Schema); err != nil {
		return nil, err
	}
	if err := checkTable(ctx, db, o.Table, o.IDColumn); err != nil {
		return nil, err
	}
	table, err := catalogName(ctx, db, o.Table)
	if err != nil {
		return nil, err
	}
	o.Schema = schema
	in := &install{o: o, table: table}
	var seqOID *uint32
	var seqSchema, seqName *string
	if err := db.QueryRow(ctx, columnSQL, pgx.Identifier(table).Sanitize(), o.IDColumn, name(table, o.IDColumn, o.Channel)).Scan(
		&in.col.typeOID, &in.col.typeName, &seqOID, &seqSchema, &seqName, &in.col.installed); err != nil {
		return nil, fmt.Errorf("look up id column %q of %s: %w", o.IDColumn, in.tableName(), err)
	}
	// eventstable.Inspect goes by the type's name, which a type of another
	// schema may share. The trigger checks the type again on every insert,
	// since the table's owner may change it later.
	if !slices.Contains(supportedTypes, in.col.typeOID) {
		return nil, fmt.Errorf("%w: id column %q of %s is %s, not the built-in smallint, integer, bigint, uuid, text or varchar",
			eventstable.ErrIDType, o.IDColumn, in.tableName(), in.col.typeName)
	}
	if seqOID != nil {
		in.col.sequence = &sequenceRef{oid: *seqOID, ident: pgx.Identifier{*seqSchema, *seqName}.Sanitize()}
	}
	if in.notifiers, err = notifyTriggers(ctx, db, table, name(table, o.IDColumn, o.Channel), o.Channel); err != nil {
		return nil, err
	}
	return in, nil
}

// sql returns query for notified's schema, which resolve has resolved.
func (in *install) sql(query string) string { return dbtx.InSchema(in.o.Schema, query) }

// tableName is the table's name for messages: schema.table, unquoted.
func (in *install) tableName() string { return strings.Join(in.table, ".") }

// report decides, from what checkRecorded found, whether to install, with
// which restart and warnings, and returns the report of it.
func (in *install) report(found *recorded) (*Report, error) {
	triggerSQL, err := sqlFor(in.o, in.table)
	if err != nil {
		return nil, err
	}
	r := &Report{SQL: triggerSQL, Trigger: name(in.table, in.o.IDColumn, in.o.Channel), Table: in.tableName()}
	for _, n := range in.notifiers {
		r.Warnings = append(r.Warnings, n.warning(in.table, in.o.Channel))
	}
	switch {
	case found == nil:
	case found.ahead == nil:
		r.Warnings = append(r.Warnings, found.warning)
	case in.o.RestartSequence && found.ahead.CanRestart:
		r.Restart = &SequenceRestart{Sequence: found.ahead.Sequence, Value: found.ahead.Restart}
		r.SQL += "\n" + r.Restart.SQL() + ";\n"
	case in.o.AllowRecordedIDs:
		r.Warnings = append(r.Warnings, found.ahead.what())
	default:
		return nil, found.ahead
	}
	return r, nil
}

// catalogName returns the schema and name of table as the catalog spells
// them.
func catalogName(ctx context.Context, db dbtx.DBTX, table string) ([]string, error) {
	parts, err := ident.ParseTableName(table)
	if err != nil {
		return nil, err
	}
	var nsp, rel string
	if err := db.QueryRow(ctx, catalogNameSQL, pgx.Identifier(parts).Sanitize()).Scan(&nsp, &rel); err != nil {
		return nil, fmt.Errorf("resolve table %s: %w", table, err)
	}
	return []string{nsp, rel}, nil
}

// checkTable reports what is wrong, if anything, with the events table
// and its id column.
func checkTable(ctx context.Context, db dbtx.DBTX, table, idColumn string) error {
	_, err := eventstable.Spec{Table: table, IDColumn: idColumn, NoNameColumn: true}.Inspect(ctx, db)
	return err
}
