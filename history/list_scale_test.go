package history

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// TestListAtScale measures List on a database that holds many events (see
// docs/history.md, "In the browser", for how to fill one): each filter's
// first page, a page deep in the list, and its plan. It runs only when
// TEST_LIST_SCALE_URL names that database, whose channel "events" it
// reads.
func TestListAtScale(t *testing.T) {
	url := os.Getenv("TEST_LIST_SCALE_URL")
	if url == "" {
		t.Skip("set TEST_LIST_SCALE_URL to a database filled with events to measure List at scale")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := NewStore(pool, "")
	page, err := s.List(ctx, EventFilter{Channel: "events", Limit: 500})
	require.NoError(t, err)
	require.NotNil(t, page.Next)
	// A cursor nine tenths of the way down, read from the index.
	var deep Cursor
	require.NoError(t, pool.QueryRow(ctx, `SELECT dispatched_at, event_id FROM notified_dispatch WHERE channel = 'events'
		ORDER BY dispatched_at, event_id OFFSET (SELECT count(*) / 10 FROM notified_dispatch) LIMIT 1`).Scan(&deep.DispatchedAt, &deep.EventID))
	for _, c := range []struct {
		name string
		f    EventFilter
	}{
		{"first page", EventFilter{}},
		{"second page", EventFilter{After: page.Next}},
		{"deep page (90%)", EventFilter{After: &deep}},
		{"name, common", EventFilter{Name: "name_3"}},
		{"name, rare", EventFilter{Name: "refund_issued"}},
		{"name, deep", EventFilter{Name: "name_3", After: &deep}},
		{"outcome missing", EventFilter{Outcomes: []string{OutcomeMissing}}},
		{"outcome missing, deep", EventFilter{Outcomes: []string{OutcomeMissing}, After: &deep}},
		{"outcomes missing+rejected", EventFilter{Outcomes: []string{OutcomeMissing, OutcomeRejected}}},
		{"last day", EventFilter{Since: time.Now().Add(-24 * time.Hour)}},
		{"a day a week ago", EventFilter{Since: time.Now().Add(-8 * 24 * time.Hour), Until: time.Now().Add(-7 * 24 * time.Hour)}},
		{"handler", EventFilter{Handler: "handler_3"}},
		{"handler, its filter skips 99%", EventFilter{Handler: "big_order_alert"}},
		{"job state completed", EventFilter{JobStates: []string{StateCompleted}}},
		{"job state discarded", EventFilter{JobStates: []string{StateDiscarded}}},
		{"job state discarded, handler", EventFilter{JobStates: []string{StateDiscarded}, Handler: "handler_2"}},
		{"job state retryable", EventFilter{JobStates: []string{"retryable"}}},
	} {
		c.f.Channel = "events"
		var times []time.Duration
		var n int
		for range 5 {
			start := time.Now()
			p, err := s.List(ctx, c.f)
			require.NoError(t, err, c.name)
			times = append(times, time.Since(start))
			n = len(p.Events)
		}
		slices.Sort(times)
		q, args, planSQL, err := listQuery("", c.f)
		require.NoError(t, err)
		var plan []string
		require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, planSQL); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+q, args)
			if err != nil {
				return err
			}
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		}))
		t.Logf("%-30s %3d rows  median %7.2f ms  max %7.2f ms\n    %s", c.name, n,
			float64(times[2].Microseconds())/1000, float64(times[4].Microseconds())/1000, strings.Join(plan, "\n    "))
	}
}
