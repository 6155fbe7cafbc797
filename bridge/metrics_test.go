package bridge_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
)

// metricValue returns the value of the metric name whose labels include
// labels, from a fresh gather of reg, and whether it was found. A
// histogram's value is its count of observations.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	m, typ := findMetric(t, reg, name, labels)
	switch {
	case m == nil:
		return 0, false
	case typ == dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case typ == dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case typ == dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount()), true
	}
	return 0, false
}

// histogram returns the histogram name whose labels include labels, from a
// fresh gather of reg.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	m, typ := findMetric(t, reg, name, labels)
	require.NotNil(t, m, "%s %v not exported", name, labels)
	require.Equal(t, dto.MetricType_HISTOGRAM, typ, name)
	return m.GetHistogram()
}

// observedAtMost returns how many observations of h were at most le, which
// must be one of its buckets' bounds.
func observedAtMost(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket bounded by %g", le)
	return 0
}

// findMetric returns the metric name whose labels include labels, and its
// type, from a fresh gather of reg; nil if there is none.
func findMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (*dto.Metric, dto.MetricType) {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m, f.GetType()
		}
	}
	return nil, 0
}

func TestMetricsAfterKnownWorkload(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "signup", "send_email")
	tb.Route(t, "signup", "audit")
	tb.Route(t, "order", "audit")
	b := tb.Start(t, nil, tb.Config)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	ch := map[string]string{"channel": tb.DB.Channel}

	ids := tb.InsertEvents(t, "signup", "signup", "signup", "order", "nobody_listens")
	tb.Outbox(t, "not-an-id")
	tb.notify(t, "also-not-an-id")
	tb.WaitRecorded(t, len(ids)+1)
	with := func(k, v string) map[string]string { return map[string]string{"channel": tb.DB.Channel, k: v} }
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n, _ := metricValue(t, reg, "notified_events_total", with("outcome", "rejected"))
		ignored, _ := metricValue(t, reg, "notified_notifications_ignored_total", with("reason", "not_an_id"))
		return n == 1 && ignored == 1, "rejected event or ignored notification not counted yet"
	})

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"notified_events_total", with("outcome", "dispatched"), 4},
		{"notified_events_total", with("outcome", "unrouted"), 1},
		{"notified_events_total", with("outcome", "rejected"), 1},
		{"notified_jobs_enqueued_total", with("handler", "send_email"), 3},
		{"notified_jobs_enqueued_total", with("handler", "audit"), 4},
		{"notified_dispatch_lag_seconds", ch, 4}, // one observation per dispatched event
		{"notified_listener_connected", ch, 1},
		{"notified_backlog_events", ch, 0},
		{"notified_backlog_oldest_age_seconds", ch, 0},
		{"notified_backlog_scrape_error", ch, 0},
		{"notified_listener_reconnects_total", ch, 0},
		{"notified_notifications_ignored_total", with("reason", "not_an_id"), 1},
		{"notified_events_table_ok", ch, 1},
		{"notified_batch_splits_total", ch, 0},
		{"notified_notifications_waiting", ch, 0},
	} {
		got, ok := metricValue(t, reg, c.name, c.labels)
		require.True(t, ok, "%s %v not exported", c.name, c.labels)
		require.Equal(t, c.want, got, "%s %v", c.name, c.labels)
	}
	// Notifications: one per insert and the hand-sent one.
	notes, _ := metricValue(t, reg, "notified_notifications_received_total", ch)
	require.Equal(t, float64(len(ids)+1), notes)
	// Batches: every committed batch is in both histograms, and the batch
	// sizes add up to the rows claimed.
	batches, _ := metricValue(t, reg, "notified_batch_size_events", ch)
	durations, _ := metricValue(t, reg, "notified_batch_duration_seconds", ch)
	rowBytes, _ := metricValue(t, reg, "notified_batch_row_bytes", ch)
	require.Equal(t, batches, durations)
	require.Equal(t, batches, rowBytes)
	// Stats reads the same metrics.
	require.Equal(t, bridge.Stats{Notifications: int64(notes), Batches: int64(batches), Dispatched: 4, Jobs: 7, Unrouted: 1, Rejected: 1, Ignored: 1},
		b.Stats())
	last, _ := metricValue(t, reg, "notified_last_catch_up_timestamp_seconds", ch)
	require.InDelta(t, float64(time.Now().Unix()), last, 30)
}

func TestMetricsBacklogReadAtScrape(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	// A bridge that is built but not running: the backlog it reports comes
	// from the database, not from its own counters.
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	tb.InsertEvents(t, "a", "b", "c")
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".notified_outbox SET created_at = now() - interval '90 seconds' WHERE event_id = (SELECT min(event_id) FROM "+tb.DB.Schema+".notified_outbox)")
	ch := map[string]string{"channel": tb.DB.Channel}
	n, ok := metricValue(t, reg, "notified_backlog_events", ch)
	require.True(t, ok)
	require.Equal(t, 3.0, n)
	age, _ := metricValue(t, reg, "notified_backlog_oldest_age_seconds", ch)
	require.InDelta(t, 90, age, 10)
	up, _ := metricValue(t, reg, "notified_listener_connected", ch)
	require.Zero(t, up)
}

// finalize ends job id as River does (state, attempt, finalized_at), which
// records its outcome in notified_job; retryable leaves it waiting for its
// next attempt.
func finalize(t *testing.T, tb *testBundle, id int64, state string) {
	t.Helper()
	finalizedAt := "now()"
	if state == "retryable" {
		finalizedAt = "NULL"
	}
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".river_job SET state = $2, attempt = 1, attempted_at = now(), finalized_at = "+finalizedAt+
		", errors = ARRAY['{\"error\": \"boom\", \"attempt\": 1, \"at\": \"2026-01-01T00:00:00Z\"}'::jsonb] WHERE id = $1", id, state)
}

// scrape serves reg as /metrics does and returns the lines of the metrics
// whose name starts with prefix.
func scrape(t *testing.T, reg *prometheus.Registry, prefix string) []string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func TestMetricsHandlerOutcomesAndDeadLetters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "signup", "send_email")
	tb.Route(t, "signup", "audit")
	b := tb.Start(t, nil, tb.Config)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)

	// Nothing finished yet: the dead letters are 0 and no handler has a
	// series.
	tb.InsertEvents(t, "signup", "signup", "signup", "signup")
	tb.WaitRecorded(t, 4)
	require.Equal(t, []string{
		`notified_dead_letters_24h{channel="` + tb.DB.Channel + `"} 0`,
	}, scrape(t, reg, "notified_dead_letters"))

	var ids []int64
	rows, err := tb.DB.Pool.Query(context.Background(), "SELECT id FROM "+tb.DB.Schema+".river_job WHERE kind = 'send_email' ORDER BY id")
	require.NoError(t, err)
	ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Len(t, ids, 4)
	finalize(t, tb, ids[0], "completed")
	finalize(t, tb, ids[1], "discarded")
	finalize(t, tb, ids[2], "cancelled")
	finalize(t, tb, ids[3], "retryable")
	var audit int64
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), "SELECT min(id) FROM "+tb.DB.Schema+".river_job WHERE kind = 'audit'").Scan(&audit))
	finalize(t, tb, audit, "completed")
	// A job finalized before the window is not counted as finished, but is
	// still a dead letter of the last day.
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".notified_job SET finalized_at = now() - interval '1 hour' WHERE job_id = $1", ids[2])

	// Webhook routes share their kind: each URL has its own series.
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_job (job_id, channel, event_id, event_name, kind, queue, state,
			attempt, max_attempts, created_at, finalized_at, webhook_url)
		VALUES (-1, $1, '1', 'signup', 'notified_webhook', 'webhook', 'discarded', 1, 1, now(), now(), 'https://a.example/hook?q="x"'),
		       (-2, $1, '2', 'signup', 'notified_webhook', 'webhook', 'completed', 1, 1, now(), now(), 'https://b.example/hook')`, tb.DB.Channel)

	ch := `channel="` + tb.DB.Channel + `"`
	require.ElementsMatch(t, []string{
		`notified_handler_jobs_finished_5m{` + ch + `,handler="notified_webhook",state="discarded",webhook="https://a.example/hook?q=\"x\""} 1`,
		`notified_handler_jobs_finished_5m{` + ch + `,handler="notified_webhook",state="completed",webhook="https://b.example/hook"} 1`,
		`notified_handler_jobs_finished_5m{` + ch + `,handler="audit",state="completed",webhook=""} 1`,
		`notified_handler_jobs_finished_5m{` + ch + `,handler="send_email",state="completed",webhook=""} 1`,
		`notified_handler_jobs_finished_5m{` + ch + `,handler="send_email",state="discarded",webhook=""} 1`,
		`notified_handler_jobs_retryable{` + ch + `,handler="send_email",webhook=""} 1`,
	}, scrape(t, reg, "notified_handler_jobs"))
	require.Equal(t, []string{`notified_dead_letters_24h{` + ch + `} 3`}, scrape(t, reg, "notified_dead_letters"), "the discarded webhook job is a dead letter too")
	require.Equal(t, []string{`notified_history_scrape_error{` + ch + `} 0`}, scrape(t, reg, "notified_history_scrape_error"))

	// Another channel's jobs are not counted.
	other := tb.Config
	other.Channel = tb.DB.Channel + "_other"
	b2, err := bridge.New(context.Background(), tb.DB.Pool, other)
	require.NoError(t, err)
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(b2)
	require.Empty(t, scrape(t, reg2, "notified_handler_jobs"))
	require.Equal(t, []string{`notified_dead_letters_24h{channel="` + other.Channel + `"} 0`}, scrape(t, reg2, "notified_dead_letters"))
}

func TestMetricsHistoryScrapeError(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Schema+".notified_job RENAME TO notified_job_gone")

	ch := map[string]string{"channel": tb.DB.Channel}
	failed, ok := metricValue(t, reg, "notified_history_scrape_error", ch)
	require.True(t, ok)
	require.Equal(t, 1.0, failed)
	_, ok = metricValue(t, reg, "notified_dead_letters_24h", ch)
	require.False(t, ok, "no figure when it could not be read")
	// The rest of the scrape is unaffected.
	backlogFailed, ok := metricValue(t, reg, "notified_backlog_scrape_error", ch)
	require.True(t, ok)
	require.Zero(t, backlogFailed)
}
