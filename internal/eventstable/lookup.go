package eventstable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// Row is one row of the events table, as Lookup reads it.
type Row struct {
	// ID is the canonical text of the id, as the bridge records it.
	ID string
	// Found says whether the row exists.
	Found bool
	// Name is the value of the name column.
	Name *string
	// Data is the row as a JSON object.
	Data json.RawMessage
}

// Lookup reads the row whose id is payload, read as an id of the table
// (042 is event 42 of an integer column). A payload that is no id of the
// table is an error; a row that does not exist is a Row with Found false.
func (t *Table) Lookup(ctx context.Context, db dbtx.DBTX, payload string) (*Row, error) {
	id, err := t.ParseID(payload)
	if err != nil {
		return nil, err
	}
	row := &Row{ID: id}
	var gotID string
	var data []byte
	err = db.QueryRow(ctx, t.FetchSQL(), []string{id}).Scan(&gotID, &row.Name, &data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return row, nil
	case err != nil:
		return nil, fmt.Errorf("fetch event %s from %s: %w", id, t.Display, err)
	}
	row.Found, row.Data = true, data
	return row, nil
}
