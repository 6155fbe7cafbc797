package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// recordDispatch writes the record the bridge writes when it dispatches
// event id on channel to jobs handlers.
func recordDispatch(t *testing.T, db *testdb.DB, channel, id, outcome string, jobs int) {
	t.Helper()
	testdb.Exec(t, db.Pool, "INSERT INTO "+tbl(db, "notified_dispatch")+" (channel, event_id, event_name, outcome, jobs, notified_at)"+
		" SELECT $1, $2, 'user_signed_up', $3, coalesce(jsonb_agg(jsonb_build_object('kind', 'k' || i)), '[]'), now()"+
		" FROM generate_series(1, $4::int) i", channel, id, outcome, jobs)
}

func TestNotifyAlreadyDispatchedGivesTheReplayCommand(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	channel := "It's " + db.Channel
	recordDispatch(t, db, channel, "42", "dispatched", 2)
	recordDispatch(t, db, channel, "43", "unrouted", 0)

	out := mustRun(t, db, "notify", "--channel", channel, "42")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, fmt.Sprintf(`^event 42 on channel %q was already dispatched at .+ \(dispatched, 2 jobs\): notify does not run its handlers again$`, channel), lines[0])
	require.Equal(t, "to run them again, replay it:", lines[1])
	replay := fmt.Sprintf(`notified-bridge replay --schema %s --channel 'It'\''s %s' --id 42 --reason 'why it runs again'`, db.Schema, db.Channel)
	require.Equal(t, "  "+replay, lines[2])
	require.Zero(t, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")), "nothing written")

	out = mustRun(t, db, "notify", "--channel", channel, "43")
	require.Contains(t, out, "(unrouted, 0 jobs)")

	var got struct {
		EventID           string `json:"event_id"`
		Channel           string `json:"channel"`
		AlreadyDispatched *struct {
			At      time.Time `json:"dispatched_at"`
			Outcome string    `json:"outcome"`
			Jobs    int       `json:"jobs"`
		} `json:"already_dispatched"`
		ReplayCommand string `json:"replay_command"`
	}
	out = mustRun(t, db, "notify", "--channel", channel, "--json", "42")
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, "42", got.EventID)
	require.Equal(t, channel, got.Channel)
	require.NotNil(t, got.AlreadyDispatched)
	require.Equal(t, "dispatched", got.AlreadyDispatched.Outcome)
	require.Equal(t, 2, got.AlreadyDispatched.Jobs)
	require.WithinDuration(t, time.Now(), got.AlreadyDispatched.At, time.Hour)
	require.Equal(t, replay, got.ReplayCommand)

	// Not dispatched yet: announced, and the JSON has no dispatch.
	out = mustRun(t, db, "notify", "--channel", channel, "--json", "44")
	require.JSONEq(t, fmt.Sprintf(`{"event_id": "44", "channel": %q}`, channel), out)
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))
}

func TestNotifyNotMigrated(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	_, stderr, code := run(t, db, "notify", "--channel", db.Channel, "42")
	requireUserError(t, stderr, code, "migrate")
}

func TestReplayCommandFor(t *testing.T) {
	t.Parallel()
	require.Equal(t, "notified-bridge replay --id 42 --reason 'why it runs again'", replayCommandFor("", "events", "42"))
	require.Equal(t, "notified-bridge replay --schema app --channel app_events --id 'a b' --reason 'why it runs again'",
		replayCommandFor("app", "app_events", "a b"))
	require.Equal(t, `''`, shellQuote(""))
	require.Equal(t, `'$(rm -rf /)'`, shellQuote("$(rm -rf /)"))
}
