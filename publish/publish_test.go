package publish_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/publish"
)

type outboxRow struct{ Channel, EventID string }

func outbox(t *testing.T, db *testdb.DB) []outboxRow {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(),
		"SELECT channel, event_id FROM "+pgx.Identifier{db.Schema, "notified_outbox"}.Sanitize()+" ORDER BY seq")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[outboxRow])
	require.NoError(t, err)
	return out
}

func TestNotifyCommitted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	marker := db.Channel + "_m"
	conn := testdb.Listen(t, db, db.Channel, marker)

	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, p.Notify(ctx, tx, "42"))

	// Before the commit, neither the row nor the notification is visible.
	require.Empty(t, outbox(t, db))
	testdb.NoNotification(t, db, conn, marker)

	require.NoError(t, tx.Commit(ctx))
	n := testdb.NextNotification(t, conn)
	require.Equal(t, db.Channel, n.Channel)
	require.Equal(t, "42", n.Payload)
	require.Equal(t, []outboxRow{{db.Channel, "42"}}, outbox(t, db))
}

func TestNotifyRolledBack(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	marker := db.Channel + "_m"
	conn := testdb.Listen(t, db, db.Channel, marker)

	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Notify(ctx, tx, "42"))
	require.NoError(t, p.Notify(ctx, tx, "43"))
	require.NoError(t, tx.Rollback(ctx))

	require.Empty(t, outbox(t, db), "a rolled-back Notify leaves no outbox row")
	testdb.NoNotification(t, db, conn, marker)
}

func TestNotifyWithPool(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	conn := testdb.Listen(t, db, db.Channel)

	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)
	for _, id := range []string{"1", "2", "3"} {
		require.NoError(t, p.Notify(ctx, db.Pool, id))
	}
	for _, id := range []string{"1", "2", "3"} {
		n := testdb.NextNotification(t, conn)
		require.Equal(t, db.Channel, n.Channel)
		require.Equal(t, id, n.Payload)
	}
	require.Equal(t, []outboxRow{{db.Channel, "1"}, {db.Channel, "2"}, {db.Channel, "3"}}, outbox(t, db))
}

func TestNotifySpecialChannelAndID(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	channel := `It's "My-Events" ` + db.Schema[len(db.Schema)-8:]
	id := `a'b"c; select 1 --`
	conn := testdb.Listen(t, db, channel, strings.ToLower(channel))

	p, err := publish.New(db.Schema, channel)
	require.NoError(t, err)
	require.NoError(t, p.Notify(ctx, db.Pool, id))

	n := testdb.NextNotification(t, conn)
	require.Equal(t, channel, n.Channel, "the channel is used as spelled")
	require.Equal(t, id, n.Payload)
	require.Equal(t, []outboxRow{{channel, id}}, outbox(t, db))
}

func TestNewDefaultChannel(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	p, err := publish.New(db.Schema, "")
	require.NoError(t, err)
	require.NoError(t, p.Notify(context.Background(), db.Pool, "7"))
	require.Equal(t, []outboxRow{{"events", "7"}}, outbox(t, db))
}

func TestNewCurrentSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(db.URL)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = db.Schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })

	p, err := publish.New("", db.Channel)
	require.NoError(t, err)
	require.NoError(t, p.Notify(ctx, conn, "9"))
	require.Equal(t, []outboxRow{{db.Channel, "9"}}, outbox(t, db))
}

func TestNotifyEmptyID(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)
	err = p.Notify(context.Background(), db.Pool, "")
	require.EqualError(t, err, "notify: event id is empty")
	require.Empty(t, outbox(t, db))
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"bad-name", "1abc", strings.Repeat("s", 47)} {
		_, err := publish.New(schema, "events")
		require.Error(t, err, "%q", schema)
		require.Contains(t, err.Error(), `Schema "`+schema+`" is not valid`)
	}

	_, err := publish.New("s", strings.Repeat("c", 64))
	require.Error(t, err)
	require.Contains(t, err.Error(), "is longer than 63 bytes")

	_, err = publish.New("s", strings.Repeat("c", 63))
	require.NoError(t, err, "63 bytes is fine")
	_, err = publish.New("", "")
	require.NoError(t, err)
}

func TestNotifyUnmigrated(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)

	err = p.Notify(context.Background(), db.Pool, "42")
	require.Error(t, err)
	require.Contains(t, err.Error(), `notify event 42 on channel "`+db.Channel+`"`)
	require.Contains(t, err.Error(), `relation "`+db.Schema+`.notified_`)
	require.Contains(t, err.Error(), "does not exist")
}

// recordDispatch writes the record the bridge writes when it dispatches
// event id on channel, routed to jobs handlers.
func recordDispatch(t *testing.T, db *testdb.DB, channel, id, outcome string, jobs int) time.Time {
	t.Helper()
	var at time.Time
	require.NoError(t, db.Pool.QueryRow(context.Background(), "INSERT INTO "+pgx.Identifier{db.Schema, "notified_dispatch"}.Sanitize()+
		" (channel, event_id, event_name, outcome, jobs, notified_at)"+
		" SELECT $1, $2, 'user_signed_up', $3, coalesce(jsonb_agg(jsonb_build_object('kind', 'k' || i)), '[]'), now()"+
		" FROM generate_series(1, $4::int) i RETURNING dispatched_at", channel, id, outcome, jobs).Scan(&at))
	return at
}

func TestAnnounceAlreadyDispatched(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	marker := db.Channel + "_m"
	conn := testdb.Listen(t, db, db.Channel, marker)
	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)

	at := recordDispatch(t, db, db.Channel, "42", "dispatched", 2)
	res, err := p.Announce(ctx, db.Pool, "42")
	require.NoError(t, err)
	require.True(t, res.AlreadyDispatched())
	require.Equal(t, "dispatched", res.Dispatched.Outcome)
	require.Equal(t, 2, res.Dispatched.Jobs)
	require.True(t, at.Equal(res.Dispatched.At), "dispatched at %s, want %s", res.Dispatched.At, at)
	require.Empty(t, outbox(t, db), "an event dispatched already is not written to the outbox")
	testdb.NoNotification(t, db, conn, marker)

	// Notify does nothing either, and says nothing.
	require.NoError(t, p.Notify(ctx, db.Pool, "42"))
	require.Empty(t, outbox(t, db))

	// An unrouted event has no jobs.
	recordDispatch(t, db, db.Channel, "43", "unrouted", 0)
	res, err = p.Announce(ctx, db.Pool, "43")
	require.NoError(t, err)
	require.Equal(t, &publish.Dispatch{At: res.Dispatched.At, Outcome: "unrouted", Jobs: 0}, res.Dispatched)
}

func TestAnnounceNotDispatched(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	conn := testdb.Listen(t, db, db.Channel)
	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)

	// Dispatched on another channel, or under another spelling of the
	// id: announced.
	recordDispatch(t, db, db.Channel+"_other", "42", "dispatched", 1)
	recordDispatch(t, db, db.Channel, "042", "dispatched", 1)
	res, err := p.Announce(ctx, db.Pool, "42")
	require.NoError(t, err)
	require.False(t, res.AlreadyDispatched())
	require.Nil(t, res.Dispatched)
	require.Equal(t, "42", testdb.NextNotification(t, conn).Payload)
	require.Equal(t, []outboxRow{{db.Channel, "42"}}, outbox(t, db))

	// Announced twice before the bridge dispatched it: twice.
	res, err = p.Announce(ctx, db.Pool, "42")
	require.NoError(t, err)
	require.False(t, res.AlreadyDispatched())
	require.Len(t, outbox(t, db), 2)
}

func TestAnnounceErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	p, err := publish.New(db.Schema, db.Channel)
	require.NoError(t, err)
	_, err = p.Announce(context.Background(), db.Pool, "")
	require.EqualError(t, err, "notify: event id is empty")
	_, err = p.Announce(context.Background(), db.Pool, "42")
	require.ErrorContains(t, err, `notify event 42 on channel "`+db.Channel+`": `)
	require.ErrorContains(t, err, "does not exist")
}
