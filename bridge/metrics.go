package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/notified/notified/history"
)

// metrics are the bridge's Prometheus metrics. The bridge is itself a
// prometheus.Collector: register it with a registry to export them.
type metrics struct {
	notifications prometheus.Counter
	events        *prometheus.CounterVec
	jobs          *prometheus.CounterVec
	skipped       *prometheus.CounterVec // jobs a route's filter skipped, by handler and reason
	duplicates    prometheus.Counter
	errors        prometheus.Counter
	isolations    prometheus.Counter
	ignored       *prometheus.CounterVec
	batchSize     prometheus.Histogram
	batchBytes    prometheus.Histogram
	batchDuration prometheus.Histogram
	lag           prometheus.Histogram
	listener      prometheus.Gauge
	reconnects    prometheus.Counter
	lanesWoken    prometheus.Counter
	lastCatchUp   prometheus.Gauge
	tableOK       prometheus.Gauge
	waiting       prometheus.Gauge

	backlog    *prometheus.Desc
	oldestAge  *prometheus.Desc
	scrapeFail *prometheus.Desc
	history    historyMetrics
}

func newMetrics(channel string) *metrics {
	labels := prometheus.Labels{"channel": channel}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "notified", Name: name, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		notifications: counter("notifications_received_total", "Notifications received on the channel."),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "notified", Name: "events_total",
			Help:        "Events recorded, by outcome: dispatched, unrouted, missing, rejected.",
			ConstLabels: labels}, []string{"outcome"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "notified", Name: "jobs_enqueued_total",
			Help: "Jobs inserted into River, by handler kind.", ConstLabels: labels}, []string{"handler"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "notified", Name: "jobs_skipped_by_filter_total",
			Help: "Jobs not made because the route's filter skipped the event, by handler kind and reason: filter (the " +
				"predicate was false), filter_error (it could not be evaluated on the row).", ConstLabels: labels}, []string{"handler", "reason"}),
		duplicates: counter("duplicates_skipped_total", "Claimed outbox rows skipped because their event was recorded before."),
		errors:     counter("dispatch_errors_total", "Dispatch transactions and adoptions of notified ids that failed (rolled back and retried later)."),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "notified", Name: "notifications_ignored_total",
			Help:        "Notifications that named no event and were not recorded, by reason: not_an_id, no_row (after the missing grace), too_many_waiting.",
			ConstLabels: labels}, []string{"reason"}),
		isolations: counter("batch_splits_total", "Batches that failed on the data of their events and were dispatched in halves to isolate the bad events."),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "notified", Name: "batch_size_events",
			Help: "Outbox rows claimed per committed dispatch transaction.", ConstLabels: labels,
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "notified", Name: "batch_row_bytes",
			Help: "Row data, as JSON, read per committed dispatch transaction: at most the batch byte budget; rows too large to read are not counted.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1024, 2, 21)}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "notified", Name: "batch_duration_seconds",
			Help: "Duration of committed dispatch transactions, from begin to commit.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "notified", Name: "dispatch_lag_seconds",
			Help:        "Time from the producer's transaction (the outbox row's created_at) to the commit of the event's jobs.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}),
		listener: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "notified", Name: "listener_connected", Help: "1 while the listener is connected and LISTENing, else 0.", ConstLabels: labels}),
		tableOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "notified", Name: "events_table_ok",
			Help: "1 while the events table exists as inspected and has its capture trigger, else 0 (see /readyz for why).", ConstLabels: labels}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "notified", Name: "notifications_waiting",
			Help: fmt.Sprintf("Notified ids with no row yet, tried again until the missing grace has passed (at most %d; "+
				"past that they are ignored as too_many_waiting).", maxUnresolved),
			ConstLabels: labels}),
		reconnects:  counter("listener_reconnects_total", "Times the listener lost its connection and reconnected."),
		lanesWoken:  counter("lanes_woken_total", "Lanes of ordered routes the bridge advanced because River finalized their head while a dispatch held them."),
		lastCatchUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "notified", Name: "last_catch_up_timestamp_seconds", Help: "Unix time of the last complete drain of the outbox.", ConstLabels: labels}),
		backlog: prometheus.NewDesc("notified_backlog_events", "Outbox rows not dispatched yet (read from the database at scrape time).",
			nil, labels),
		oldestAge: prometheus.NewDesc("notified_backlog_oldest_age_seconds", "Age of the oldest outbox row not dispatched yet; 0 when the backlog is empty.",
			nil, labels),
		scrapeFail: prometheus.NewDesc("notified_backlog_scrape_error", "1 when the backlog could not be read at this scrape.", nil, labels),
		history:    newHistoryMetrics(labels),
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.notifications, m.events, m.jobs, m.skipped, m.duplicates, m.errors, m.isolations, m.ignored, m.batchSize,
		m.batchBytes, m.batchDuration, m.lag, m.listener, m.reconnects, m.lanesWoken, m.lastCatchUp, m.tableOK, m.waiting}
}

// Describe implements prometheus.Collector.
func (b *Bridge) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range b.metrics.collectors() {
		c.Describe(ch)
	}
	ch <- b.metrics.backlog
	ch <- b.metrics.oldestAge
	ch <- b.metrics.scrapeFail
	b.metrics.history.describe(ch)
}

// Collect implements prometheus.Collector. The backlog gauges, the
// handlers' job outcomes and the dead letters are read from the database at
// scrape time, so every bridge of a channel reports the same, true figure.
func (b *Bridge) Collect(ch chan<- prometheus.Metric) {
	for _, c := range b.metrics.collectors() {
		c.Collect(ch)
	}
	b.collectHistory(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	var age float64
	err := b.pool.QueryRow(ctx, b.q.backlog, b.cfg.Channel).Scan(&n, &age)
	if err != nil {
		b.log.Warn("metrics: read backlog", slog.String("error", err.Error()))
		ch <- prometheus.MustNewConstMetric(b.metrics.scrapeFail, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(b.metrics.scrapeFail, prometheus.GaugeValue, 0)
	ch <- prometheus.MustNewConstMetric(b.metrics.backlog, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(b.metrics.oldestAge, prometheus.GaugeValue, age)
}

// observe records a committed batch in the metrics.
func (b *Bridge) observe(res *batchResult) {
	m := b.metrics
	m.batchSize.Observe(float64(res.claimed))
	m.batchBytes.Observe(float64(res.held))
	var took time.Duration
	for _, st := range res.steps {
		took += st.d
	}
	m.batchDuration.Observe(took.Seconds())
	m.duplicates.Add(float64(res.dupes))
	since := time.Since(res.claimedAt)
	byOutcome := map[string]int{}
	byHandler := map[string]int{}
	for _, r := range res.recorded {
		byOutcome[r.outcome]++
		if r.outcome != history.OutcomeDispatched {
			continue
		}
		for _, route := range r.jobs {
			byHandler[route.Kind]++
		}
		for i, why := range r.skipped {
			if why != "" {
				m.skipped.WithLabelValues(r.routes[i].Kind, why).Inc()
			}
		}
		if !res.claimedAt.IsZero() {
			m.lag.Observe((r.age + since).Seconds())
		}
	}
	for o, n := range byOutcome {
		m.events.WithLabelValues(o).Add(float64(n))
	}
	for k, n := range byHandler {
		m.jobs.WithLabelValues(k).Add(float64(n))
	}
}

// Stats are the bridge's counters since New, as its metrics count them.
type Stats struct {
	Notifications int64 // notifications received
	Batches       int64 // dispatch transactions committed that claimed outbox rows
	Dispatched    int64 // events that got jobs
	Jobs          int64 // jobs inserted
	Unrouted      int64 // events recorded as unrouted
	Missing       int64 // events recorded as missing
	Rejected      int64 // events recorded as rejected
	Duplicates    int64 // claims skipped because the event was recorded before
	Ignored       int64 // notifications that named no event: not an id, or no row
	Reconnects    int64 // listener reconnects
	LanesWoken    int64 // lanes advanced by the lane waker (lanes.go)
}

// Stats returns a snapshot of the counters, read from the bridge's
// Prometheus metrics (notified_notifications_received_total and the
// others), so both always agree.
func (b *Bridge) Stats() Stats {
	m := b.metrics
	events := countsBy(m.events, "outcome")
	return Stats{
		Notifications: countsBy(m.notifications, "")[""],
		Batches:       countsBy(m.batchSize, "")[""],
		Dispatched:    events[string(history.OutcomeDispatched)],
		Jobs:          countsBy(m.jobs, "")[""],
		Unrouted:      events[string(history.OutcomeUnrouted)],
		Missing:       events[string(history.OutcomeMissing)],
		Rejected:      events[string(history.OutcomeRejected)],
		Duplicates:    countsBy(m.duplicates, "")[""],
		Ignored:       countsBy(m.ignored, "")[""],
		Reconnects:    countsBy(m.reconnects, "")[""],
		LanesWoken:    countsBy(m.lanesWoken, "")[""],
	}
}

// countsBy collects c, a counter or histogram or a vector of them, and
// returns the counters' values, or the histograms' numbers of observations,
// added up by the value of label ("" adds up all).
func countsBy(c prometheus.Collector, label string) map[string]int64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	out := map[string]int64{}
	for metric := range ch {
		var d dto.Metric
		if err := metric.Write(&d); err != nil {
			continue // only a malformed metric fails, and ours are built by client_golang
		}
		key := ""
		for _, l := range d.GetLabel() {
			if label != "" && l.GetName() == label {
				key = l.GetValue()
			}
		}
		switch {
		case d.Counter != nil:
			out[key] += int64(d.GetCounter().GetValue())
		case d.Histogram != nil:
			out[key] += int64(d.GetHistogram().GetSampleCount())
		}
	}
	return out
}

// caughtUp notes a complete drain of the outbox.
func (b *Bridge) caughtUp(t time.Time) {
	b.lastCatchUp.Store(t.UnixNano())
	b.metrics.lastCatchUp.Set(float64(t.UnixNano()) / 1e9)
}
