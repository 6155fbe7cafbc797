package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
)

// insertDispatch records event id as the bridge does, dispatched ago ago.
func (tb *testBundle) insertDispatch(t *testing.T, id, name, outcome, kind string, ago time.Duration) {
	t.Helper()
	jobs := "[]"
	if kind != "" {
		jobs = fmt.Sprintf(`[{"kind": %q, "queue": "default", "priority": 1, "max_attempts": 25}]`, kind)
	}
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.table("notified_dispatch")+`
		(channel, event_id, event_name, outcome, jobs, notified_at, dispatched_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, now() - $6::interval, now() - $6::interval)`, tb.db.Channel, id, name, outcome, jobs, ago)
}

// insertFinishedJob records job id of event as River's trigger does once
// River has deleted it.
func (tb *testBundle) insertFinishedJob(t *testing.T, id int64, event, kind, state string) {
	t.Helper()
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.table("notified_job")+`
		(job_id, channel, event_id, event_name, kind, queue, state, attempt, max_attempts, created_at, finalized_at)
		VALUES ($1, $2, $3, 'n', $4, 'default', $5, 1, 25, now(), now())`, id, tb.db.Channel, event, kind, state)
}

func ids(p *history.EventPage) []string {
	out := []string{}
	for _, e := range p.Events {
		out = append(out, e.ID)
	}
	return out
}

func TestListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	// e1 oldest ... e5 newest; e4 and e5 at the same time, ordered by id.
	for i, ago := range []time.Duration{5 * time.Hour, 4 * time.Hour, 3 * time.Hour, time.Hour, time.Hour} {
		tb.insertDispatch(t, fmt.Sprintf("e%d", i+1), "order_placed", history.OutcomeDispatched, "send_receipt", ago)
	}
	tb.insertDispatch(t, "other", "order_placed", history.OutcomeDispatched, "", 0)
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.table("notified_dispatch")+` SET channel = 'elsewhere' WHERE event_id = 'other'`)

	p, err := tb.store.List(ctx, history.EventFilter{Channel: tb.db.Channel, Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"e5", "e4"}, ids(p))
	require.Equal(t, []history.Route{{Handler: "send_receipt", Queue: "default", Priority: 1, MaxAttempts: 25}}, p.Events[0].Routes)
	require.NotNil(t, p.Next)
	require.Equal(t, "e4", p.Next.EventID)

	p, err = tb.store.List(ctx, history.EventFilter{Channel: tb.db.Channel, Limit: 2, After: p.Next})
	require.NoError(t, err)
	require.Equal(t, []string{"e3", "e2"}, ids(p))

	p, err = tb.store.List(ctx, history.EventFilter{Channel: tb.db.Channel, Limit: 2, After: p.Next})
	require.NoError(t, err)
	require.Equal(t, []string{"e1"}, ids(p))
	require.Nil(t, p.Next, "the last page")

	p, err = tb.store.List(ctx, history.EventFilter{Channel: "nobody"})
	require.NoError(t, err)
	require.Empty(t, p.Events)
	require.NotNil(t, p.Events, "an empty list, not null, for JSON")
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.insertDispatch(t, "1", "order_placed", history.OutcomeDispatched, "send_receipt", 5*time.Hour)
	tb.insertDispatch(t, "2", "user_signed_up", history.OutcomeDispatched, "send_welcome", 4*time.Hour)
	tb.insertDispatch(t, "3", "order_placed", history.OutcomeMissing, "", 3*time.Hour)
	tb.insertDispatch(t, "4", "nobody_listens", history.OutcomeUnrouted, "", 2*time.Hour)
	tb.insertDispatch(t, "x", "", history.OutcomeRejected, "", time.Hour)
	tb.insertFinishedJob(t, 101, "1", "send_receipt", history.StateDiscarded)
	tb.insertFinishedJob(t, 102, "2", "send_welcome", history.StateCompleted)

	for _, c := range []struct {
		name string
		f    history.EventFilter
		want []string
	}{
		{"name", history.EventFilter{Name: "order_placed"}, []string{"3", "1"}},
		{"outcome", history.EventFilter{Outcomes: []string{history.OutcomeMissing}}, []string{"3"}},
		{"outcomes", history.EventFilter{Outcomes: []string{history.OutcomeRejected, history.OutcomeMissing}}, []string{"x", "3"}},
		{"outcome dispatched", history.EventFilter{Outcomes: []string{history.OutcomeDispatched}}, []string{"2", "1"}},
		{"since", history.EventFilter{Since: time.Now().Add(-150 * time.Minute)}, []string{"x", "4"}},
		{"until", history.EventFilter{Until: time.Now().Add(-270 * time.Minute)}, []string{"1"}},
		{"handler", history.EventFilter{Handler: "send_welcome"}, []string{"2"}},
		{"job state", history.EventFilter{JobStates: []string{history.StateDiscarded}}, []string{"1"}},
		{"job state and handler", history.EventFilter{JobStates: []string{history.StateDiscarded}, Handler: "send_welcome"}, []string{}},
		{"job state completed", history.EventFilter{JobStates: []string{history.StateCompleted}}, []string{"2"}},
		{"job states", history.EventFilter{JobStates: []string{history.StateCompleted, history.StateDiscarded}}, []string{"2", "1"}},
		{"name and outcome", history.EventFilter{Name: "order_placed", Outcomes: []string{history.OutcomeDispatched}}, []string{"1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.f.Channel = tb.db.Channel
			p, err := tb.store.List(ctx, c.f)
			require.NoError(t, err)
			require.Equal(t, c.want, ids(p))
		})
	}
}

// TestListHandlerFilterLeavesOutSkippedRoutes: the handler filter keeps
// the events its handler got a job for at dispatch, not those its route's
// filter skipped; of webhook routes, which share their kind, one URL's job
// is enough.
func TestListHandlerFilterLeavesOutSkippedRoutes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	dispatch := func(id, jobs string, ago time.Duration) {
		testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.table("notified_dispatch")+`
			(channel, event_id, event_name, outcome, jobs, notified_at, dispatched_at)
			VALUES ($1, $2, 'order_placed', 'dispatched', $3::jsonb, now() - $4::interval, now() - $4::interval)`, tb.db.Channel, id, jobs, ago)
	}
	dispatch("1", `[{"kind": "big_order_alert", "queue": "default", "priority": 1, "max_attempts": 25},
		{"kind": "send_receipt", "queue": "default", "priority": 1, "max_attempts": 25}]`, 4*time.Hour)
	dispatch("2", `[{"kind": "big_order_alert", "queue": "default", "priority": 1, "max_attempts": 25, "where": "$.total > 1000", "skipped": "filter"},
		{"kind": "send_receipt", "queue": "default", "priority": 1, "max_attempts": 25}]`, 3*time.Hour)
	dispatch("3", `[{"kind": "big_order_alert", "queue": "default", "priority": 1, "max_attempts": 25, "where": "strict $.total > 1000", "skipped": "filter_error"},
		{"kind": "notified_webhook", "queue": "webhook", "priority": 1, "max_attempts": 25, "webhook": "https://a.example/", "where": "$.x == 1", "skipped": "filter"},
		{"kind": "notified_webhook", "queue": "webhook", "priority": 1, "max_attempts": 25, "webhook": "https://b.example/"}]`, 2*time.Hour)
	dispatch("4", `[{"kind": "notified_webhook", "queue": "webhook", "priority": 1, "max_attempts": 25, "webhook": "https://a.example/", "where": "$.x == 1", "skipped": "filter"}]`, time.Hour)

	for handler, want := range map[string][]string{
		"big_order_alert":  {"1"},
		"send_receipt":     {"2", "1"},
		"notified_webhook": {"3"},
	} {
		p, err := tb.store.List(ctx, history.EventFilter{Channel: tb.db.Channel, Handler: handler})
		require.NoError(t, err)
		require.Equal(t, want, ids(p), handler)
	}
}

func TestListRefusesBadFilters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	now := time.Now()
	for _, c := range []struct {
		f    history.EventFilter
		want string
	}{
		{history.EventFilter{Outcomes: []string{"lost"}}, `invalid filter: outcome "lost" is not one of dispatched, unrouted, missing, rejected`},
		{history.EventFilter{JobStates: []string{"dead"}}, `invalid filter: job state "dead" is not one of available, cancelled, completed, discarded, pending, retryable, running, scheduled`},
		{history.EventFilter{Since: now, Until: now}, "invalid filter: time range is empty"},
		{history.EventFilter{Limit: -1}, "invalid filter: page size -1 is out of range: use 1 to 500"},
		{history.EventFilter{Limit: 501}, "invalid filter: page size 501 is out of range: use 1 to 500"},
	} {
		_, err := tb.store.List(context.Background(), c.f)
		require.ErrorIs(t, err, history.ErrBadFilter)
		require.ErrorContains(t, err, c.want)
	}
}

func TestJobEvent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.insertFinishedJob(t, 7, "42", "send_receipt", history.StateCompleted)

	channel, event, err := tb.store.JobEvent(ctx, 7)
	require.NoError(t, err)
	require.Equal(t, tb.db.Channel, channel)
	require.Equal(t, "42", event)

	_, _, err = tb.store.JobEvent(ctx, 8)
	require.ErrorIs(t, err, history.ErrNotFound)
	require.ErrorContains(t, err, "no job 8 of notified's")

	// A job whose metadata names no event.
	tb.insertFinishedJob(t, 9, "", "send_receipt", history.StateCompleted)
	_, _, err = tb.store.JobEvent(ctx, 9)
	require.ErrorIs(t, err, history.ErrNotFound)
	require.ErrorContains(t, err, "job 9 names no event")
}

func TestReplayNotFound(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, err := tb.store.Replay(context.Background(), 12345)
	require.ErrorIs(t, err, history.ErrNotFound)
	require.ErrorContains(t, err, "no replay 12345")
	jobs, err := tb.store.ReplayJobs(context.Background(), 12345)
	require.NoError(t, err)
	require.Empty(t, jobs)
}

func TestListErrorsFromTheDatabase(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	s := history.NewStore(tb.db.Pool, "no_such_schema")
	_, err := s.List(ctx, history.EventFilter{Channel: tb.db.Channel})
	require.ErrorContains(t, err, "list events: ERROR: relation \"no_such_schema.notified_dispatch\" does not exist")
	_, err = s.List(ctx, history.EventFilter{Channel: tb.db.Channel, JobStates: []string{history.StateDiscarded}})
	require.ErrorContains(t, err, "list events: ERROR:")
	_, _, err = s.JobEvent(ctx, 1)
	require.ErrorContains(t, err, "look up job 1: ERROR:")
	_, err = s.Replay(ctx, 1)
	require.ErrorContains(t, err, "read replay 1: ERROR:")
	_, err = s.ReplayJobs(ctx, 1)
	require.ErrorContains(t, err, "list the jobs of replay 1: ERROR:")
}
