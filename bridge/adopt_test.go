package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
)

// TestHandSentNotifyJustBeforeStopIsKept: an id notified by hand, with no
// outbox row, is put in the outbox as the bridge stops, before it would
// have been adopted, so the next bridge dispatches it.
func TestHandSentNotifyJustBeforeStopIsKept(t *testing.T) {
	t.Parallel()
	tb := setup(t, setupOpts{NoTrigger: true})
	tb.Route(t, "signup", "welcome")
	ids := tb.InsertEvents(t, "signup")
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	stop := bridgetest.Start(t, b)

	tb.notify(t, ids[0])
	testdb.WaitFor(t, 5*time.Second, func() (bool, string) { return b.Stats().Notifications >= 1, "notification not received" })
	stop()

	in := testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox WHERE event_id = $1", ids[0]) +
		testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch WHERE event_id = $1", ids[0])
	require.Equal(t, 1, in, "the hand-sent id is in the outbox or dispatched")

	// The next bridge dispatches it.
	tb.Start(t, nil, tb.Config)
	tb.WaitRecorded(t, 1)
	tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"welcome"}})
}
