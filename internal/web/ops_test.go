package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/web"
)

// opsServer serves the ops endpoints of a bridge built for the test, and
// also the UI behind credentials, as `run --http-addr` does.
func (tb *testBundle) opsServer(t *testing.T, run bool) (*bridge.Bridge, *prometheus.Registry, string) {
	t.Helper()
	b, err := bridge.New(context.Background(), tb.db.Pool, tb.cfg)
	require.NoError(t, err)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	mux := web.Ops(b, reg)
	mux.Handle("/", tb.newServer(t, "ops", "secret"))
	return b, reg, serve(t, mux).URL
}

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b.String()
}

func TestHealthzAnswersWithoutCredentials(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, _, url := tb.opsServer(t, false)
	code, body := getURL(t, url+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok"}`, body)
	// The UI next to it still asks for credentials.
	code, _ = getURL(t, url+"/")
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestReadyzReportsWhyNotReady(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, _, url := tb.opsServer(t, false) // built, never started
	code, body := getURL(t, url+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var r bridge.Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.False(t, r.Ready)
	require.True(t, r.Database)
	require.Equal(t, []string{
		`listener is not connected to channel "` + tb.db.Channel + `"`,
		"the outbox has not been drained since start",
	}, r.Reasons)
}

func TestReadyzOKWhileRunning(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, _, url := tb.opsServer(t, true)
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		code, body := getURL(t, url+"/readyz")
		return code == http.StatusOK, body
	})
	_, body := getURL(t, url+"/readyz")
	var r bridge.Readiness
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.True(t, r.Ready)
	require.True(t, r.Listening)
	require.Empty(t, r.Reasons)
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.route(t, "order_placed", "send_receipt")
	_, _, url := tb.opsServer(t, true)
	tb.insertEvent(t, 7, "order_placed")
	tb.waitDispatched(t, "7")
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, body := getURL(t, url+"/metrics")
		return strings.Contains(body, `notified_jobs_enqueued_total{channel="`+tb.db.Channel+`",handler="send_receipt"} 1`), body
	})
	code, body := getURL(t, url+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, name := range []string{
		"notified_notifications_received_total", "notified_events_total", "notified_batch_size_events",
		"notified_batch_duration_seconds", "notified_dispatch_lag_seconds", "notified_backlog_events",
		"notified_backlog_oldest_age_seconds", "notified_listener_connected", "notified_listener_reconnects_total",
	} {
		require.Contains(t, body, "# TYPE "+name+" ", "metric %s", name)
	}
}
