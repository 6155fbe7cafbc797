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

// webhookBed is a River client working webhook jobs to a receiver, with
// the state probe and the delivery metrics.
type webhookBed struct {
	db     *testdb.DB
	client *river.Client[pgx.Tx]
	probe  *stateProbe
	reg    *prometheus.Registry
	url    string // the receiver's hook
}

// newWebhookBed starts a receiver answering with answer and a client
// working webhook jobs with opts (loopback allowed, metrics registered).
func newWebhookBed(t *testing.T, db *testdb.DB, opts jobs.WebhookOptions, answer http.HandlerFunc) *webhookBed {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	b := &webhookBed{db: db, reg: prometheus.NewRegistry(), probe: newStateProbe(db), url: srv.URL + "/hooks/orders"}
	opts.AllowPrivate, opts.Registerer = true, b.reg
	workers := river.NewWorkers()
	require.NoError(t, jobs.RegisterWebhooks(workers, opts))
	b.client = startClient(t, db, workers, b.probe)
	return b
}

// deliver inserts a webhook job to the receiver; lane is its lane key as
// JSON ("" for none).
func (b *webhookBed) deliver(t *testing.T, lane string) int64 {
	t.Helper()
	meta := `{"notified": {"channel": "events", "event_id": "1", "webhook": {"url": "` + b.url + `"}`
	if lane != "" {
		meta += `, "lane": ` + lane
	}
	res, err := b.client.Insert(context.Background(), jobs.Args[webhookKind]{Payload: samplePayload()},
		&river.InsertOpts{Metadata: []byte(meta + "}}")})
	require.NoError(t, err)
	return res.Job.ID
}

// TestWebhookCompletesAnOrderedDeliveryAtOnce: a delivered job of an
// ordered webhook route (a lane key in its metadata) is completed when the
// handler returns, so the lane's next delivery need not wait for River's
// completer; a job of an unordered route is left to River's completer.
func TestWebhookCompletesAnOrderedDeliveryAtOnce(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	b := newWebhookBed(t, db, jobs.WebhookOptions{}, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok": true}`)
	})

	ordered := b.deliver(t, `"\"customer-7\""`)
	require.Equal(t, probed{job: ordered, state: "completed"}, b.probe.next(t))
	waitState(t, b.client, ordered, rivertype.JobStateCompleted)
	require.Contains(t, output(t, db, ordered), `"status": 200`, "the delivery's output is recorded with the completion")

	unordered := b.deliver(t, "")
	require.Equal(t, probed{job: unordered, state: "running"}, b.probe.next(t))
	waitState(t, b.client, unordered, rivertype.JobStateCompleted)
	require.Contains(t, output(t, db, unordered), `"status": 200`)

	// Odd metadata: a lane that is not a string is still a lane; a null
	// one is none. Either way the event is delivered.
	odd := b.deliver(t, "7")
	require.Equal(t, probed{job: odd, state: "completed"}, b.probe.next(t))
	null := b.deliver(t, "null")
	require.Equal(t, probed{job: null, state: "running"}, b.probe.next(t))
	waitState(t, b.client, null, rivertype.JobStateCompleted)
	require.Equal(t, map[string]float64{"at_once": 2}, orderedCompletions(t, b.reg))
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
	b := newWebhookBed(t, db, jobs.WebhookOptions{OrderedCompletions: -1}, func(http.ResponseWriter, *http.Request) {})
	id := b.deliver(t, `"\"customer-7\""`)
	require.Equal(t, probed{job: id, state: "running"}, b.probe.next(t))
	waitState(t, b.client, id, rivertype.JobStateCompleted)
	require.Equal(t, map[string]float64{"batched": 1}, orderedCompletions(t, b.reg))
}

// TestWebhookOrderedCompletionFailureIsCounted: when the worker cannot
// complete an ordered delivery at once (here its job vanished while the
// receiver answered), the handler still reports the delivery and counts
// the failure; River's completer is left with the job.
func TestWebhookOrderedCompletionFailureIsCounted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	b := newWebhookBed(t, db, jobs.WebhookOptions{}, func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.Header.Get("webhook-id"), "msg_notified_")
		_, err := db.Pool.Exec(r.Context(), "DELETE FROM "+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+" WHERE id = $1::bigint", id)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	id := b.deliver(t, `"\"customer-7\""`)
	got := b.probe.next(t)
	require.Equal(t, id, got.job)
	require.Contains(t, got.state, "no rows", "the job is gone")
	require.Equal(t, map[string]float64{"at_once_failed": 1}, orderedCompletions(t, b.reg))
}
