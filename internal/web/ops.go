package web

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/notified/notified/bridge"
)

// Checker is what /readyz asks; *bridge.Bridge is one.
type Checker interface {
	Ready(ctx context.Context) (bridge.Readiness, error)
}

// Ops serves the endpoints for orchestrators and monitoring, without
// authentication and whatever name the Host header gives (they show no
// event data, change nothing, and probes and scrapers address a pod by its
// IP address):
//
//   - /healthz: 200 while the process serves HTTP.
//   - /readyz: 200 when checker is ready, else 503; both with the
//     bridge.Readiness document, whose reasons say what is wrong.
//   - /metrics: Prometheus metrics from gatherer.
func Ops(checker Checker, gatherer prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		state, err := checker.Ready(ctx)
		code := http.StatusOK
		if err != nil {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, state)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}
