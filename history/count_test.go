package history

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestCountDeadLettersPlan: the count reads the dead outcomes through the
// partial index notified_job_dead and never reads the whole of
// notified_job, whether the tables were just bulk loaded (no statistics,
// the GIN index's pending list full) or analyzed since; the dead letters
// of other channels and those outside the window are not counted, nor those
// a later job of the same handler and event replaced.
func TestCountDeadLettersPlan(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	const jobs, live = 100_000, 2_000
	// Every 100th outcome is discarded and the next one cancelled: 2,000
	// dead letters, half of them finalized in the last day.
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.notified_job (job_id, channel, event_id, event_name, kind, queue, state,
			attempt, max_attempts, created_at, attempted_at, finalized_at, last_error)
		SELECT j, $1, ((j + 1) / 2)::text, 'e', CASE WHEN j % 2 = 0 THEN 'a' ELSE 'b' END, 'default',
			CASE WHEN j % 100 = 0 THEN 'discarded' WHEN j % 100 = 1 THEN 'cancelled' ELSE 'completed' END,
			1, 1, now(), now(), now() - CASE WHEN j <= $2::int / 2 THEN interval '1 hour' ELSE interval '2 days' END, 'boom'
		FROM generate_series(1, $2::int) j`, db.Channel, jobs)
	// River still has the newest jobs, 20 of them dead (ids past every
	// recorded one), and a later job, waiting to run, for the event of
	// recorded dead letter 100 (handler a), as a retry or a replay makes.
	// (A later job that River finished is in notified_job, as the
	// finalization trigger records every one: see TestDeadLetters.)
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.river_job (id, args, kind, max_attempts, metadata, priority, queue, state,
			scheduled_at, attempted_at, finalized_at, attempt)
		SELECT $2::int + j, '{}', CASE WHEN j % 2 = 0 THEN 'a' ELSE 'b' END, 1,
			jsonb_build_object('notified', jsonb_build_object('channel', $1::text, 'event_id', CASE WHEN j = 2 THEN '50' ELSE (j + $2::int)::text END)),
			1, 'default', CASE WHEN j % 100 = 0 THEN 'discarded' WHEN j = 2 THEN 'available' ELSE 'completed' END::`+db.Schema+`.river_job_state,
			now(), now(), CASE WHEN j = 2 THEN NULL ELSE now() END, 1
		FROM generate_series(1, $3::int) j`, db.Channel, jobs, live)
	// Another channel's dead letter.
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.notified_job (job_id, channel, event_id, event_name, kind, queue, state,
			attempt, max_attempts, created_at, finalized_at)
		VALUES (0, 'other', '1', 'e', 'a', 'default', 'discarded', 1, 1, now(), now())`)

	// 1,000 recorded in the window, less the one replaced; 20 in River.
	const want = 1000 - 1 + 20
	store := NewStore(db.Pool, db.Schema)
	since := time.Now().Add(-24 * time.Hour)
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			testdb.Exec(t, db.Pool, "ANALYZE "+db.Schema+".notified_job")
			testdb.Exec(t, db.Pool, "ANALYZE "+db.Schema+".river_job")
		}
		n, err := store.CountDeadLetters(ctx, db.Channel, since)
		require.NoError(t, err)
		require.Equal(t, int64(want), n, "analyzed %v", analyzed)

		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		plan := testdb.Explain(t, tx, store.sql(deadLetterCountSQL), db.Channel, since)
		require.NoError(t, tx.Rollback(ctx))
		t.Logf("analyzed %v: %d buffers, %v", analyzed, plan.Buffers, plan.Nodes)
		require.False(t, plan.Nodes["Seq Scan on notified_job"], "analyzed %v: %v", analyzed, plan.Nodes)
		require.True(t, plan.Nodes["Bitmap Index Scan on notified_job"] || plan.Nodes["Index Scan on notified_job"],
			"analyzed %v: %v", analyzed, plan.Nodes)
		// A few buffers per dead letter (its outcome's page, a probe or
		// two of small indexes) and river_job once: in proportion to the
		// dead letters, not to the history.
		require.Less(t, plan.Buffers, int64(12*want), "analyzed %v", analyzed)
	}

	n, err := store.CountDeadLetters(ctx, db.Channel, time.Time{})
	require.NoError(t, err)
	require.Equal(t, int64(2000-1+20), n, "since zero: every dead letter")
	n, err = store.CountDeadLetters(ctx, "other", since)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestCountDeadLettersError(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	_, err := NewStore(db.Pool, db.Schema).CountDeadLetters(context.Background(), db.Channel, time.Time{})
	require.ErrorContains(t, err, "count dead letters: ")
	require.ErrorContains(t, err, "does not exist")
}

// TestHandlerOutcomes: jobs of the channel finalized in the window and
// retryable now, by handler, webhook URL and state.
func TestHandlerOutcomes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.notified_job (job_id, channel, event_id, event_name, kind, queue, state,
			attempt, max_attempts, created_at, finalized_at)
		VALUES (1, $1, '1', 'e', 'a', 'default', 'completed', 1, 1, now(), now()),
		       (2, $1, '2', 'e', 'a', 'default', 'completed', 1, 1, now(), now()),
		       (3, $1, '3', 'e', 'b', 'default', 'discarded', 1, 1, now(), now()),
		       (4, $1, '4', 'e', 'b', 'default', 'cancelled', 1, 1, now(), now() - interval '1 hour'),
		       (5, 'other', '5', 'e', 'a', 'default', 'completed', 1, 1, now(), now())`, db.Channel)
	// Webhook routes share their kind: each URL is counted apart.
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.notified_job (job_id, channel, event_id, event_name, kind, queue, state,
			attempt, max_attempts, created_at, finalized_at, webhook_url)
		VALUES (9, $1, '9', 'e', 'notified_webhook', 'webhook', 'completed', 1, 1, now(), now(), 'https://a.example/hook'),
		       (10, $1, '10', 'e', 'notified_webhook', 'webhook', 'discarded', 1, 1, now(), now(), 'https://b.example/hook'),
		       (11, $1, '11', 'e', 'notified_webhook', 'webhook', 'completed', 1, 1, now(), now(), 'https://b.example/hook')`, db.Channel)
	testdb.Exec(t, db.Pool, `INSERT INTO `+db.Schema+`.river_job (id, args, kind, max_attempts, metadata, priority, queue, state, scheduled_at, attempt)
		VALUES (6, '{}', 'b', 3, jsonb_build_object('notified', jsonb_build_object('channel', $1::text, 'event_id', '6')), 1, 'default', 'retryable', now(), 1),
		       (7, '{}', 'b', 3, '{"notified": {"channel": "other", "event_id": "7"}}', 1, 'default', 'retryable', now(), 1),
		       (8, '{}', 'b', 3, jsonb_build_object('notified', jsonb_build_object('channel', $1::text, 'event_id', '8')), 1, 'default', 'available', now(), 0),
		       (12, '{}', 'notified_webhook', 3, jsonb_build_object('notified', jsonb_build_object('channel', $1::text, 'event_id', '12',
		           'webhook', jsonb_build_object('url', 'https://b.example/hook'))), 1, 'webhook', 'retryable', now(), 1)`, db.Channel)

	got, err := NewStore(db.Pool, db.Schema).HandlerOutcomes(ctx, db.Channel, time.Now().Add(-5*time.Minute))
	require.NoError(t, err)
	require.Equal(t, []HandlerOutcome{
		{Handler: "a", State: StateCompleted, Jobs: 2},
		{Handler: "b", State: StateDiscarded, Jobs: 1},
		{Handler: "b", State: StateRetryable, Jobs: 1},
		{Handler: "notified_webhook", Webhook: "https://a.example/hook", State: StateCompleted, Jobs: 1},
		{Handler: "notified_webhook", Webhook: "https://b.example/hook", State: StateCompleted, Jobs: 1},
		{Handler: "notified_webhook", Webhook: "https://b.example/hook", State: StateDiscarded, Jobs: 1},
		{Handler: "notified_webhook", Webhook: "https://b.example/hook", State: StateRetryable, Jobs: 1},
	}, got)

	_, err = NewStore(db.Pool, "no_such_schema").HandlerOutcomes(ctx, db.Channel, time.Now())
	require.ErrorContains(t, err, "count jobs by handler and state: ")
}
