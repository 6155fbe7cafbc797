package eventstable_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/dbtx"
	"github.com/notified/notified/internal/eventstable"
	"github.com/notified/notified/internal/testdb"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	spec := eventstable.Spec{Table: db.Events()}
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+` (id, name, payload) VALUES (7, 'signup', '{"email": "a@b.c"}'), (8, NULL, NULL)`)

	// Found: the name and the row as JSON, under the canonical id.
	ev, err := lookup(ctx, db.Pool, spec, "007")
	require.NoError(t, err)
	require.Equal(t, "7", ev.ID)
	require.True(t, ev.Found)
	require.NotNil(t, ev.Name)
	require.Equal(t, "signup", *ev.Name)
	var row map[string]any
	require.NoError(t, json.Unmarshal(ev.Data, &row))
	require.Equal(t, []any{float64(7), "signup", map[string]any{"email": "a@b.c"}}, []any{row["id"], row["name"], row["payload"]})
	require.Contains(t, row, "created_at")
	require.Len(t, row, 4)

	// A row whose name is NULL is found, with a nil name.
	ev, err = lookup(ctx, db.Pool, spec, "8")
	require.NoError(t, err)
	require.True(t, ev.Found)
	require.Nil(t, ev.Name)

	// Missing: not found, no error.
	ev, err = lookup(ctx, db.Pool, spec, "42")
	require.NoError(t, err)
	require.Equal(t, &eventstable.Row{ID: "42"}, ev)

	// Not an id of the table.
	ev, err = lookup(ctx, db.Pool, spec, "abc")
	require.Nil(t, ev)
	require.EqualError(t, err, `payload "abc" is not a valid bigint id`)
	_, err = lookup(ctx, db.Pool, spec, "99999999999999999999")
	require.EqualError(t, err, `payload "99999999999999999999" is out of range for id column type bigint`)

	// No such table.
	spec.Table = db.Schema + ".nope"
	_, err = lookup(ctx, db.Pool, spec, "7")
	require.ErrorIs(t, err, eventstable.ErrTableNotFound)
}

func TestLookupUUID(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	ctx := context.Background()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" (id uuid PRIMARY KEY, kind text)")
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+" VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'created')")
	spec := eventstable.Spec{Table: db.Events(), NameColumn: "kind"}

	ev, err := lookup(ctx, db.Pool, spec, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
	require.NoError(t, err)
	require.Equal(t, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", ev.ID)
	require.True(t, ev.Found)
	require.Equal(t, "created", *ev.Name)
	require.JSONEq(t, `{"id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "kind": "created"}`, string(ev.Data))

	_, err = lookup(ctx, db.Pool, spec, "a0eebc99")
	require.EqualError(t, err, `payload "a0eebc99" is not a valid uuid id`)
}

// TestLookupCanonicalID: the id of a lookup is the text the bridge
// records for the payload, whether or not the row exists.
func TestLookupCanonicalID(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	for _, table := range []string{"uuids (id uuid PRIMARY KEY, name text)", "texts (id text PRIMARY KEY, name text)", "ints (id integer PRIMARY KEY, name text)"} {
		testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Schema+"."+table)
	}
	spec := func(table string) eventstable.Spec { return eventstable.Spec{Table: db.Schema + "." + table} }

	for _, c := range []struct{ table, payload, want, err string }{
		{table: "events", payload: "007", want: "7"},
		{table: "events", payload: "-0", want: "0"},
		{table: "events", payload: "abc", err: `payload "abc" is not a valid bigint id`},
		{table: "uuids", payload: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{table: "uuids", payload: "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}", want: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{table: "uuids", payload: "not-a-uuid", err: `payload "not-a-uuid" is not a valid uuid id`},
		{table: "texts", payload: "Ev-1", want: "Ev-1"},
		{table: "texts", payload: "", err: "payload is empty"},
		{table: "ints", payload: "2147483647", want: "2147483647"},
		{table: "ints", payload: "2147483648", err: `payload "2147483648" is out of range for id column type integer`},
	} {
		ev, err := lookup(ctx, db.Pool, spec(c.table), c.payload)
		if c.err != "" {
			require.EqualError(t, err, c.err, "%s %q", c.table, c.payload)
			require.Nil(t, ev)
			continue
		}
		require.NoError(t, err, "%s %q", c.table, c.payload)
		require.Equal(t, c.want, ev.ID, "%s %q", c.table, c.payload)
		require.False(t, ev.Found)
	}

	_, err := lookup(ctx, db.Pool, spec("nope"), "1")
	require.ErrorIs(t, err, eventstable.ErrTableNotFound)
}

// lookup inspects the table spec names and reads the row of payload.
func lookup(ctx context.Context, db dbtx.DBTX, spec eventstable.Spec, payload string) (*eventstable.Row, error) {
	t, err := spec.Inspect(ctx, db)
	if err != nil {
		return nil, err
	}
	return t.Lookup(ctx, db, payload)
}
