package eventstable

import "fmt"

// The reasons below are recorded, and shown, when an event gets no job;
// dispatch and replay say them in the same words.

// NoRowReason says that the table has no row with the id.
func (t *Table) NoRowReason(id string) string {
	return fmt.Sprintf("no row in %s with %s = %s", t.Display, t.IDName, id)
}

// NullNameReason says that the row's name column is NULL.
func (t *Table) NullNameReason() string {
	return fmt.Sprintf("name column %s is NULL", t.NameName)
}

// NoRouteReason says that no route takes events named name.
func NoRouteReason(name string) string {
	return fmt.Sprintf("no route for event name %q", name)
}
