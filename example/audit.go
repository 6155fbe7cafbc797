package example

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/jobs"
)

// auditTable returns the quoted name of example_audit in schema, or the
// unqualified name when schema is empty, for messages.
func auditTable(schema string) string {
	if schema == "" {
		return pgx.Identifier{"example_audit"}.Sanitize()
	}
	return pgx.Identifier{schema, "example_audit"}.Sanitize()
}

// EnsureAuditTable creates the example_audit table in schema ("" for the
// connection's current schema) unless it exists. The schema must exist; db
// is a pool, a connection or a transaction.
func EnsureAuditTable(ctx context.Context, db dbtx.DBTX, schema string) error {
	_, err := db.Exec(ctx, dbtx.InSchema(schema, createAuditTableSQL))
	if err != nil {
		return fmt.Errorf("create %s: %w", auditTable(schema), err)
	}
	return nil
}

// auditor is the handler of WriteAudit.
type auditor struct {
	db     dbtx.DBTX
	schema string
}

// handle records the event once: a second job for the same event, a retry
// after a crash or a replay, inserts nothing.
func (a *auditor) handle(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
	var data any // a JSON null when the job carries no row
	if len(ev.Data) > 0 {
		data = ev.Data
	}
	tag, err := a.db.Exec(ctx, dbtx.InSchema(a.schema, insertAuditSQL), ev.ID, ev.Name, WriteAudit{}.Kind(), data)
	if err != nil {
		// A lost connection or a locked table may go away: retry.
		return jobs.Result{}, fmt.Errorf("audit event %s (%s): %w", ev.ID, ev.Name, err)
	}
	return jobs.Success(map[string]bool{"inserted": tag.RowsAffected() == 1}), nil
}
