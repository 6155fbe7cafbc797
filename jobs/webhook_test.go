package jobs_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// webhookKind is the built-in webhook handler's kind, to insert its jobs.
type webhookKind struct{}

func (webhookKind) Kind() string { return routes.WebhookKind }

// TestWebhookCompletesAnOrderedDeliveryAtOnce: a delivered job of an
// ordered webhook route (a lane key in its metadata) is completed when the
// handler returns, so the lane's next delivery need not wait for River's
// completer; a job of an unordered route is left to River's completer.
func TestWebhookCompletesAnOrderedDeliveryAtOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"ok": true}`)
	}))
	t.Cleanup(srv.Close)
	workers := river.NewWorkers()
	reg := prometheus.NewRegistry()
	require.NoError(t, jobs.RegisterWebhooks(workers, jobs.WebhookOptions{AllowPrivate: true, Registerer: reg}))
	probe := newStateProbe(db)
	client := startClient(t, db, workers, probe)
	deliver := func(metadata string) int64 {
		t.Helper()
		res, err := client.Insert(context.Background(), jobs.Args[webhookKind]{Payload: samplePayload()},
			&river.InsertOpts{Metadata: []byte(metadata)})
		require.NoError(t, err)
		return res.Job.ID
	}

	ordered := deliver(`{"notified": {"channel": "events", "event_id": "1", "lane": "\"customer-7\"", "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)
	require.Equal(t, probed{job: ordered, state: "completed"}, probe.next(t))
	waitState(t, client, ordered, rivertype.JobStateCompleted)
	require.Contains(t, output(t, db, ordered), `"status": 200`, "the delivery's output is recorded with the completion")

	unordered := deliver(`{"notified": {"channel": "events", "event_id": "1", "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)
	require.Equal(t, probed{job: unordered, state: "running"}, probe.next(t))
	waitState(t, client, unordered, rivertype.JobStateCompleted)
	require.Contains(t, output(t, db, unordered), `"status": 200`)

	// Odd metadata: a lane that is not a string is still a lane; a null
	// one is none. Either way the event is delivered.
	odd := deliver(`{"notified": {"channel": "events", "event_id": "1", "lane": 7, "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)
	require.Equal(t, probed{job: odd, state: "completed"}, probe.next(t))
	null := deliver(`{"notified": {"channel": "events", "event_id": "1", "lane": null, "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)
	require.Equal(t, probed{job: null, state: "running"}, probe.next(t))
	waitState(t, client, null, rivertype.JobStateCompleted)
	require.Equal(t, map[string]float64{"at_once": 2}, orderedCompletions(t, reg))
}

// orderedCompletions reads notified_webhook_ordered_completions_total by
// its label how.
func orderedCompletions(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "notified_webhook_ordered_completions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestWebhookOrderedCompletionsOff: with OrderedCompletions negative, an
// ordered delivery is left to River's completer, as any other.
func TestWebhookOrderedCompletionsOff(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	workers := river.NewWorkers()
	reg := prometheus.NewRegistry()
	require.NoError(t, jobs.RegisterWebhooks(workers, jobs.WebhookOptions{AllowPrivate: true, OrderedCompletions: -1, Registerer: reg}))
	probe := newStateProbe(db)
	client := startClient(t, db, workers, probe)
	res, err := client.Insert(context.Background(), jobs.Args[webhookKind]{Payload: samplePayload()}, &river.InsertOpts{Metadata: []byte(
		`{"notified": {"channel": "events", "event_id": "1", "lane": "\"customer-7\"", "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)})
	require.NoError(t, err)
	require.Equal(t, probed{job: res.Job.ID, state: "running"}, probe.next(t))
	waitState(t, client, res.Job.ID, rivertype.JobStateCompleted)
	require.Equal(t, map[string]float64{"batched": 1}, orderedCompletions(t, reg))
}

// TestWebhookOrderedCompletionFailureIsCounted: when the worker cannot
// complete an ordered delivery at once (here its job vanished while the
// receiver answered), the handler still reports the delivery and counts
// the failure; River's completer is left with the job.
func TestWebhookOrderedCompletionFailureIsCounted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := strings.TrimPrefix(r.Header.Get("webhook-id"), "msg_notified_")
		_, err := db.Pool.Exec(r.Context(), "DELETE FROM "+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+" WHERE id = $1::bigint", id)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	workers := river.NewWorkers()
	reg := prometheus.NewRegistry()
	require.NoError(t, jobs.RegisterWebhooks(workers, jobs.WebhookOptions{AllowPrivate: true, Registerer: reg}))
	probe := newStateProbe(db)
	client := startClient(t, db, workers, probe)
	res, err := client.Insert(context.Background(), jobs.Args[webhookKind]{Payload: samplePayload()}, &river.InsertOpts{Metadata: []byte(
		`{"notified": {"channel": "events", "event_id": "1", "lane": "\"customer-7\"", "webhook": {"url": "` + srv.URL + `/hooks/orders"}}}`)})
	require.NoError(t, err)
	got := probe.next(t)
	require.Equal(t, res.Job.ID, got.job)
	require.Contains(t, got.state, "no rows", "the job is gone")
	require.Equal(t, map[string]float64{"at_once_failed": 1}, orderedCompletions(t, reg))
}
