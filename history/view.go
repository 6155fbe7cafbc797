package history

import (
	"context"

	"github.com/notified/notified/internal/eventstable"
)

// EventsTable names the events table whose rows View reads. Empty fields
// mean the defaults (events, id, name).
type EventsTable struct {
	Table      string // optionally schema-qualified ("app.events")
	IDColumn   string
	NameColumn string
}

// EventView is one event as people are shown it: its history, and its row
// as it is now.
type EventView struct {
	// Event is the event's history. Its Data is the row's current data, and
	// its Name the row's name when the event was not dispatched yet.
	Event *Event
	// RowFound says whether the events table has the event's row now.
	RowFound bool
	// RowErr, when not nil, says why the row could not be read: the table
	// cannot be read, or the id is not an id of its id column.
	RowErr error
}

// View reads the history of the event announced as payload on channel and
// merges in its row from table. The payload is read as an id of the events
// table (042 is event 42) when the table can be read, as it is otherwise.
// It returns ErrNotFound when no such event was announced.
func (s *Store) View(ctx context.Context, table EventsTable, channel, payload string) (*EventView, error) {
	var row *eventstable.Row
	t, rowErr := eventstable.Spec{Table: table.Table, IDColumn: table.IDColumn, NameColumn: table.NameColumn}.Inspect(ctx, s.db)
	if rowErr == nil {
		row, rowErr = t.Lookup(ctx, s.db, payload)
	}
	id := payload
	if rowErr == nil {
		id = row.ID
	}
	ev, err := s.Event(ctx, channel, id)
	if err != nil {
		return nil, err
	}
	v := &EventView{Event: ev, RowErr: rowErr}
	if row != nil && row.Found {
		v.RowFound = true
		ev.Data = row.Data
		if ev.Name == nil { // not dispatched yet: the row knows
			ev.Name = row.Name
		}
	}
	return v, nil
}
