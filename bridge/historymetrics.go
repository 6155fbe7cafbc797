package bridge

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notified/notified/history"
	"github.com/notified/notified/lanes"
)

// The windows of the metrics read from notified's history at scrape time.
const (
	// outcomesWindow is how far back finished jobs are counted: short, so
	// that a scrape reads few rows however busy the handlers are, and as
	// an alert reads increase(...[5m]).
	outcomesWindow = 5 * time.Minute
	// deadLettersWindow is how far back dead letters are counted, as
	// `status` counts them by default.
	deadLettersWindow = 24 * time.Hour
	// historyScrapeTimeout bounds the history queries of one scrape.
	historyScrapeTimeout = 5 * time.Second
)

// historyMetrics describes the metrics read from notified's history at
// scrape time: how the handlers fare, which workers (not the bridge) know
// first hand.
type historyMetrics struct {
	finished    *prometheus.Desc
	retryable   *prometheus.Desc
	deadLetters *prometheus.Desc
	lanes       *prometheus.Desc
	laneWaiting *prometheus.Desc
	scrapeFail  *prometheus.Desc
}

func newHistoryMetrics(labels prometheus.Labels) historyMetrics {
	return historyMetrics{
		finished: prometheus.NewDesc("notified_handler_jobs_finished_5m",
			"Jobs finalized in the last 5 minutes, by handler kind, webhook URL (webhook routes; empty for other handlers) and final state (completed, cancelled, discarded), read from notified's history at scrape time.",
			[]string{"handler", "webhook", "state"}, labels),
		retryable: prometheus.NewDesc("notified_handler_jobs_retryable",
			"Jobs that failed an attempt and wait for their next, by handler kind and webhook URL (webhook routes; empty for other handlers), read from River at scrape time.",
			[]string{"handler", "webhook"}, labels),
		deadLetters: prometheus.NewDesc("notified_dead_letters_24h",
			"Dead letters finalized in the last 24 hours: jobs discarded or cancelled and not replayed or retried since, as status counts them.",
			nil, labels),
		lanes: prometheus.NewDesc("notified_lanes",
			"Lanes of ordered routes that have jobs, by handler kind and state (running: a job runs or waits for its turn; stopped: stopped at a failure until resumed).",
			[]string{"handler", "state"}, labels),
		laneWaiting: prometheus.NewDesc("notified_lane_jobs_waiting",
			"Jobs of ordered routes waiting for their turn in their lane (River's pending state), by handler kind.",
			[]string{"handler"}, labels),
		scrapeFail: prometheus.NewDesc("notified_history_scrape_error",
			"1 when the job outcomes or dead letters could not be read at this scrape.", nil, labels),
	}
}

func (m historyMetrics) describe(ch chan<- *prometheus.Desc) {
	ch <- m.finished
	ch <- m.retryable
	ch <- m.deadLetters
	ch <- m.lanes
	ch <- m.laneWaiting
	ch <- m.scrapeFail
}

// collectHistory reads the handlers' outcomes and the dead letters of the
// bridge's channel, within historyScrapeTimeout. On an error it reports
// notified_history_scrape_error 1 and none of the others.
func (b *Bridge) collectHistory(ch chan<- prometheus.Metric) {
	m := b.metrics.history
	ctx, cancel := context.WithTimeout(context.Background(), historyScrapeTimeout)
	defer cancel()
	store := history.NewStore(b.pool, b.cfg.Schema)
	var now time.Time
	if err := b.pool.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		b.historyScrapeFailed(ch, err)
		return
	}
	outcomes, err := store.HandlerOutcomes(ctx, b.cfg.Channel, now.Add(-outcomesWindow))
	if err != nil {
		b.historyScrapeFailed(ch, err)
		return
	}
	dead, err := store.CountDeadLetters(ctx, b.cfg.Channel, now.Add(-deadLettersWindow))
	if err != nil {
		b.historyScrapeFailed(ch, err)
		return
	}
	ls, err := lanes.NewStore(b.pool, b.cfg.Schema).Summary(ctx, b.cfg.Channel)
	if err != nil {
		b.historyScrapeFailed(ch, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.scrapeFail, prometheus.GaugeValue, 0)
	for _, l := range ls {
		ch <- prometheus.MustNewConstMetric(m.lanes, prometheus.GaugeValue, float64(l.Lanes-l.Stopped), l.Kind, "running")
		ch <- prometheus.MustNewConstMetric(m.lanes, prometheus.GaugeValue, float64(l.Stopped), l.Kind, "stopped")
		ch <- prometheus.MustNewConstMetric(m.laneWaiting, prometheus.GaugeValue, float64(l.Waiting), l.Kind)
	}
	ch <- prometheus.MustNewConstMetric(m.deadLetters, prometheus.GaugeValue, float64(dead))
	for _, o := range outcomes {
		if o.State == history.StateRetryable {
			ch <- prometheus.MustNewConstMetric(m.retryable, prometheus.GaugeValue, float64(o.Jobs), o.Handler, o.Webhook)
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.finished, prometheus.GaugeValue, float64(o.Jobs), o.Handler, o.Webhook, o.State)
	}
}

func (b *Bridge) historyScrapeFailed(ch chan<- prometheus.Metric, err error) {
	b.log.Warn("metrics: read job outcomes", slog.String("error", err.Error()))
	ch <- prometheus.MustNewConstMetric(b.metrics.history.scrapeFail, prometheus.GaugeValue, 1)
}
