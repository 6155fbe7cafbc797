package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestJSONOutputOfSetUpCommands checks that the commands that change
// something print one JSON document with --json.
func TestJSONOutputOfSetUpCommands(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	table := db.Schema + ".events"

	var trig map[string]string
	out := mustRun(t, db, "install-trigger", "--table", table, "--channel", db.Channel, "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &trig), out)
	require.Equal(t, table, trig["table"])
	require.Equal(t, db.Channel, trig["channel"])
	require.Equal(t, "id", trig["id_column"])
	require.Regexp(t, `^notified_capture_[0-9a-f]+$`, trig["trigger"])

	var added struct {
		Event, Kind, Queue string
		Priority           int
		MaxAttempts        int `json:"max_attempts"`
	}
	out = mustRun(t, db, "routes", "add", "--queue", "mail", "--json", "user_signed_up", "send_email")
	require.NoError(t, json.Unmarshal([]byte(out), &added), out)
	require.Equal(t, "user_signed_up", added.Event)
	require.Equal(t, "send_email", added.Kind)
	require.Equal(t, "mail", added.Queue)
	require.Equal(t, 1, added.Priority)
	require.Equal(t, 25, added.MaxAttempts)

	var removed struct {
		Event, Kind string
		Removed     bool
	}
	out = mustRun(t, db, "routes", "remove", "--json", "user_signed_up", "send_email")
	require.NoError(t, json.Unmarshal([]byte(out), &removed), out)
	require.Equal(t, "user_signed_up", removed.Event)
	require.Equal(t, "send_email", removed.Kind)
	require.True(t, removed.Removed)

	id := insertEvent(t, db, "user_signed_up", "{}")
	var notified map[string]string
	out = mustRun(t, db, "notify", "--channel", db.Channel, "--json", "--", jsonNumber(id))
	require.NoError(t, json.Unmarshal([]byte(out), &notified), out)
	require.Equal(t, jsonNumber(id), notified["event_id"])
	require.Equal(t, db.Channel, notified["channel"])
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
