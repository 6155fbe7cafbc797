package trigger

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/migrations"
)

// Removal says what Uninstall removed.
type Removal struct {
	// Trigger is the name of the trigger and of its function.
	Trigger string `json:"trigger"`
	// Table is the events table, schema-qualified.
	Table string `json:"table"`
	// TriggerRemoved is true when the trigger was on the table and was
	// dropped.
	TriggerRemoved bool `json:"trigger_removed"`
	// Function is the trigger's function, schema-qualified.
	Function string `json:"function"`
	// FunctionRemoved is true when the function existed and was dropped.
	FunctionRemoved bool `json:"function_removed"`
	// FunctionUsers are the triggers, as table.trigger, that still call the
	// function, which is then kept.
	FunctionUsers []string `json:"function_users"`
	// OtherCaptureTriggers are notified's capture triggers left on the
	// table: those for another channel or id column.
	OtherCaptureTriggers []string `json:"other_capture_triggers"`
	// SQL is the SQL run.
	SQL string `json:"-"`
}

// Uninstall removes the capture trigger that Install installs for o from
// the events table, and its function when no other trigger calls it, in
// one transaction. It is idempotent: what is already gone is left out of
// the Removal. A table that no longer exists has no trigger, but its
// function may be left: for an unqualified Table it is looked for as if the
// table were in the current schema.
func Uninstall(ctx context.Context, db dbtx.Beginner, o Options) (*Removal, error) {
	o = o.withDefaults()
	var r *Removal
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		schema, err := migrations.ResolveSchema(ctx, tx, o.Schema)
		if err != nil {
			return err
		}
		table, err := uninstallTable(ctx, tx, o.Table)
		if err != nil {
			return err
		}
		trg := name(table, o.IDColumn, o.Channel)
		tableIdent := pgx.Identifier(table).Sanitize()
		fn := pgx.Identifier{schema, trg}.Sanitize() + "()"
		r = &Removal{Trigger: trg, Table: strings.Join(table, "."), Function: schema + "." + trg + "()",
			FunctionUsers: []string{}, OtherCaptureTriggers: []string{}}
		var sqls []string
		if err := tx.QueryRow(ctx, triggerExistsSQL, tableIdent, trg).Scan(&r.TriggerRemoved); err != nil {
			return fmt.Errorf("look for trigger %s on %s: %w", trg, r.Table, err)
		}
		if r.TriggerRemoved {
			stmt := fmt.Sprintf("DROP TRIGGER %s ON %s", pgx.Identifier{trg}.Sanitize(), tableIdent)
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("drop trigger %s on %s: %w", trg, r.Table, err)
			}
			sqls = append(sqls, stmt)
		}
		var fnExists bool
		if err := tx.QueryRow(ctx, functionExistsSQL, fn).Scan(&fnExists); err != nil {
			return fmt.Errorf("look for function %s: %w", r.Function, err)
		}
		if fnExists {
			rows, err := tx.Query(ctx, functionUsersSQL, fn)
			if err != nil {
				return fmt.Errorf("look for triggers that call %s: %w", r.Function, err)
			}
			if r.FunctionUsers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return fmt.Errorf("look for triggers that call %s: %w", r.Function, err)
			}
		}
		if fnExists && len(r.FunctionUsers) == 0 {
			stmt := "DROP FUNCTION " + fn
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("drop function %s: %w", r.Function, err)
			}
			sqls = append(sqls, stmt)
			r.FunctionRemoved = true
		}
		if r.FunctionUsers == nil {
			r.FunctionUsers = []string{}
		}
		rows, err := tx.Query(ctx, captureTriggersSQL, tableIdent, trg)
		if err != nil {
			return fmt.Errorf("look for capture triggers on %s: %w", r.Table, err)
		}
		if r.OtherCaptureTriggers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("look for capture triggers on %s: %w", r.Table, err)
		}
		if r.OtherCaptureTriggers == nil {
			r.OtherCaptureTriggers = []string{}
		}
		if len(sqls) > 0 {
			r.SQL = strings.Join(sqls, ";\n") + ";\n"
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("uninstall trigger from %s: %w", o.Table, err)
	}
	return r, nil
}

// uninstallTable returns the schema and name of table as the catalog
// spells them or, for a table that does not exist, as given, with the
// current schema when it is unqualified.
func uninstallTable(ctx context.Context, db dbtx.DBTX, table string) ([]string, error) {
	parts, err := ident.ParseTableName(table)
	if err != nil {
		return nil, err
	}
	cat, err := catalogName(ctx, db, table)
	switch {
	case err == nil:
		return cat, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	case len(parts) == 2:
		return parts, nil
	}
	var current *string
	if err := db.QueryRow(ctx, currentSchemaSQL).Scan(&current); err != nil {
		return nil, fmt.Errorf("resolve current schema: %w", err)
	}
	if current == nil {
		return nil, fmt.Errorf("table %s does not exist, and the search_path names no existing schema: name it as schema.table", table)
	}
	return []string{*current, parts[0]}, nil
}
