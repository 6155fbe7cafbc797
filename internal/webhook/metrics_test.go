package webhook

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// gathered returns the metric family name from reg, keyed by the label values
// joined with "/".
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]*dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.Metric{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += "/"
				}
				key += l.GetValue()
			}
			out[key] = m
		}
	}
	return out
}

func TestMetricsCountByRouteAndClass(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", answerStatus(http.StatusOK, ""))
	mux.HandleFunc("/missing", answerStatus(http.StatusNotFound, ""))
	mux.HandleFunc("/broken", answerStatus(http.StatusBadGateway, ""))
	mux.HandleFunc("/moved", answerStatus(http.StatusFound, ""))
	mux.HandleFunc("/slow", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	b := setup(t, mux.ServeHTTP)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	reg := prometheus.NewRegistry()
	m := NewMetrics()
	reg.MustRegister(m)
	allowed := newDeliverer(t, Options{AllowCIDRs: loopback, Timeout: 200 * time.Millisecond, Metrics: m})
	strict := newDeliverer(t, Options{Metrics: m})

	send := func(d *Deliverer, route, url string) {
		d.Deliver(context.Background(), Request{URL: url, MsgID: "m", Body: []byte(`{}`), Route: route})
	}
	send(allowed, "orders", b.server.URL+"/ok")
	send(allowed, "orders", b.server.URL+"/ok")
	send(allowed, "orders", b.server.URL+"/missing")
	send(allowed, "orders", b.server.URL+"/broken")
	send(allowed, "orders", b.server.URL+"/moved")
	send(allowed, "orders", b.server.URL+"/slow")
	send(allowed, "orders", closed)
	send(strict, "users", b.server.URL+"/ok")

	requests := gathered(t, reg, "notified_webhook_requests_total")
	want := map[string]float64{
		"2xx/orders": 2, "4xx/orders": 1, "5xx/orders": 1, "3xx/orders": 1,
		"timeout/orders": 1, "error/orders": 1, "refused/users": 1,
	}
	got := map[string]float64{}
	for key, metric := range requests {
		got[key] = metric.GetCounter().GetValue()
	}
	require.Equal(t, want, got)

	durations := gathered(t, reg, "notified_webhook_request_duration_seconds")
	require.EqualValues(t, 7, durations["orders"].GetHistogram().GetSampleCount())
	require.EqualValues(t, 1, durations["users"].GetHistogram().GetSampleCount())
	require.GreaterOrEqual(t, durations["orders"].GetHistogram().GetSampleSum(), 0.2, "the timed-out attempt took at least its timeout")
}
