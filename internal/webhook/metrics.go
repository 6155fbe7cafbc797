package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Classes of the class label of notified_webhook_requests_total.
const (
	Class2xx     = "2xx"     // the receiver answered 2xx
	Class3xx     = "3xx"     // a redirect, which is never followed
	Class4xx     = "4xx"     // a client error status
	Class5xx     = "5xx"     // a server error status
	ClassTimeout = "timeout" // no full answer within Options.Timeout
	ClassError   = "error"   // no answer: connection, DNS or TLS failure, a bad URL or secret, an odd status
	ClassRefused = "refused" // the address policy refused the target
)

// How a delivered job of an ordered route was completed: the how label of
// notified_webhook_ordered_completions_total.
const (
	CompletedAtOnce      = "at_once"        // by the worker, in a transaction of its own
	CompletedInBatch     = "batched"        // left to River's completer: the at-once budget was spent (or is none)
	CompletionAtOnceFail = "at_once_failed" // the worker's commit failed: left to River's completer
)

// Metrics are the Prometheus metrics of deliveries:
// notified_webhook_requests_total{route,class} and
// notified_webhook_request_duration_seconds{route}. The route label is
// [Request.Route], so their cardinality is bounded by the number of routes.
// Metrics is a prometheus.Collector: register it, then pass it in
// [Options.Metrics]. One Metrics may serve several Deliverers.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ordered  *prometheus.CounterVec
}

// NewMetrics returns unregistered delivery metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "notified", Name: "webhook_requests_total",
			Help: "Webhook delivery attempts, by route and class: 2xx, 3xx, 4xx, 5xx (the status answered), " +
				"timeout, error (no answer) or refused (the target's address is not allowed).",
		}, []string{"route", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "notified", Name: "webhook_request_duration_seconds",
			Help:    "Duration of webhook delivery attempts, from connecting to the end of reading the response, by route.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"route"}),
		ordered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "notified", Name: "webhook_ordered_completions_total",
			Help: "Delivered jobs of ordered routes, by how they were completed: at_once (by the worker, so the lane's next delivery " +
				"starts at once), batched (left to River's completer: the worker's --ordered-completions a second were spent, or are 0) or at_once_failed.",
		}, []string{"how"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
	m.ordered.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
	m.ordered.Collect(ch)
}

// OrderedCompletion counts a delivered job of an ordered route completed
// how (CompletedAtOnce, CompletedInBatch, CompletionAtOnceFail). A nil
// Metrics counts nothing.
func (m *Metrics) OrderedCompletion(how string) {
	if m == nil {
		return
	}
	m.ordered.WithLabelValues(how).Inc()
}

func (m *Metrics) observe(route string, r Result) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, r.Class).Inc()
	m.duration.WithLabelValues(route).Observe(r.Duration.Seconds())
}
