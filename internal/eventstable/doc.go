// Package eventstable reads the events table: it inspects the table and its
// columns in the catalog, parses notification payloads as ids of its id
// column, and builds the statements that read its rows, for the bridge's
// dispatch, replays and lookups alike.
package eventstable
