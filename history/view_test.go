package history_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/bridgetest"
)

// TestView: an event's history with its current row merged in, found by
// any spelling of its id; without a readable table, the history alone and
// why the row is missing.
func TestView(t *testing.T) {
	t.Parallel()
	tb := bridgetest.Setup(t, bridgetest.Options{})
	tb.Route(t, "signup", "k")
	tb.Start(t, nil, tb.Config)
	ids := tb.InsertEvents(t, "signup")
	tb.WaitRecorded(t, 1)
	store := history.NewStore(tb.DB.Pool, tb.DB.Schema)
	table := history.EventsTable{Table: tb.Config.Table}
	ctx := context.Background()

	v, err := store.View(ctx, table, tb.DB.Channel, "00"+ids[0])
	require.NoError(t, err)
	require.NoError(t, v.RowErr)
	require.Equal(t, ids[0], v.Event.ID)
	require.True(t, v.RowFound)
	require.JSONEq(t, `{"n": "signup"}`, rowPayload(t, v.Event.Data))
	require.Len(t, v.Event.Jobs, 1)

	v, err = store.View(ctx, history.EventsTable{Table: tb.DB.Schema + ".no_such_table"}, tb.DB.Channel, ids[0])
	require.NoError(t, err)
	require.ErrorContains(t, v.RowErr, "does not exist")
	require.False(t, v.RowFound)
	require.Equal(t, "signup", *v.Event.Name)

	_, err = store.View(ctx, table, tb.DB.Channel, "424242")
	require.ErrorIs(t, err, history.ErrNotFound)
}

// rowPayload is the payload column of a row's JSON.
func rowPayload(t *testing.T, data json.RawMessage) string {
	t.Helper()
	var row struct {
		Payload json.RawMessage `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(data, &row))
	return string(row.Payload)
}
