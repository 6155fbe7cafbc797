package bridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
