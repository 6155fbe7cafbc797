package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/webhook"
	"github.com/notified/notified/internal/worker"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/replay"
	"github.com/notified/notified/routes"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// received is one request the receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is an HTTP endpoint whose answers the test scripts.
type receiver struct {
	mu     sync.Mutex
	got    []received
	answer func(n int) (int, http.Header, string) // for the n-th request (from 1)
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(n int) (int, http.Header, string)) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, at: time.Now()})
		n := len(r.got)
		r.mu.Unlock()
		code, h, text := r.answer(n)
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type bundle struct {
	*bridgetest.Bundle
	reg *prometheus.Registry
}

// setup makes a database with a webhook route of user_signed_up to url,
// runs a bridge and a worker allowed to reach loopback (the test's
// receiver), with the secret in its environment.
func setup(t *testing.T, url string, opts jobs.WebhookOptions) *bundle {
	t.Helper()
	b := &bundle{Bundle: bridgetest.Setup(t, bridgetest.Options{}), reg: prometheus.NewRegistry()}
	require.NoError(t, routes.NewStore(b.DB.Pool, b.DB.Schema).Add(context.Background(), routes.Route{
		Event: "user_signed_up", Webhook: url, SecretEnv: "NOTIFIED_WEBHOOK_SECRET_TEST", MaxAttempts: 3}))
	b.Start(t, nil, b.Config)
	if opts.LookupSecret == nil {
		opts.LookupSecret = func(name string) (string, bool) {
			return secret, name == "NOTIFIED_WEBHOOK_SECRET_TEST"
		}
	}
	opts.Registerer = b.reg
	w, err := worker.New(b.DB.Pool, worker.Config{Schema: b.DB.Schema, Webhooks: opts, StopTimeout: 5 * time.Second,
		FetchCooldown: 10 * time.Millisecond, Logger: bridgetest.Logger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return b
}

// job reads the state, attempt, last error and output of the one job.
func (b *bundle) job(t *testing.T) (id int64, state string, attempt int, lastErr, output string) {
	t.Helper()
	var e, o *string
	err := b.DB.Pool.QueryRow(context.Background(), `SELECT id, state::text, attempt,
		errors[array_upper(errors, 1)]->>'error', metadata->>'output' FROM `+b.DB.Schema+`.river_job`).Scan(&id, &state, &attempt, &e, &o)
	require.NoError(t, err)
	if e != nil {
		lastErr = *e
	}
	if o != nil {
		output = *o
	}
	return id, state, attempt, lastErr, output
}

func (b *bundle) waitState(t *testing.T, want string) {
	t.Helper()
	testdb.WaitFor(t, 60*time.Second, func() (bool, string) {
		var state string
		err := b.DB.Pool.QueryRow(context.Background(), "SELECT coalesce((SELECT state::text FROM "+b.DB.Schema+".river_job), 'none')").Scan(&state)
		require.NoError(t, err)
		return state == want, "job is " + state
	})
}

// TestWebhookDeliversSignedEvent: the receiver gets the event as JSON,
// signed per Standard Webhooks; the job completes with the status and the
// answer as its output.
func TestWebhookDeliversSignedEvent(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(int) (int, http.Header, string) { return 200, nil, `{"ok": true}` })
	b := setup(t, rcv.srv.URL+"/hooks/welcome?token=s3cret", jobs.WebhookOptions{AllowPrivate: true})
	ids := b.InsertEvents(t, "user_signed_up")
	b.waitState(t, "completed")
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	var labels []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					labels = append(labels, l.GetValue())
				}
			}
		}
	}
	require.NotEmpty(t, labels)
	for _, l := range labels {
		require.Equal(t, "user_signed_up -> "+rcv.srv.URL+"/hooks/welcome", l, "the metrics label the route without its query")
	}

	got := rcv.requests()
	require.Len(t, got, 1)
	r := got[0]
	require.NoError(t, webhook.Verify(secret, r.header, r.body, time.Minute), "the signature verifies")
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	jobID, _, attempt, _, output := b.job(t)
	require.Equal(t, "msg_notified_"+strconv.FormatInt(jobID, 10), r.header.Get("webhook-id"))
	require.Equal(t, 1, attempt)
	var body struct {
		EventID   string          `json:"event_id"`
		EventName string          `json:"event_name"`
		Channel   string          `json:"channel"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body))
	require.Equal(t, ids[0], body.EventID)
	require.Equal(t, "user_signed_up", body.EventName)
	require.Equal(t, b.DB.Channel, body.Channel)
	require.Contains(t, string(body.Data), `"name":"user_signed_up"`)
	var out jobs.WebhookOutput
	require.NoError(t, json.Unmarshal([]byte(output), &out))
	require.Equal(t, 200, out.Status)
	require.Equal(t, `{"ok": true}`, out.Body)
}

// TestWebhookRetriesKeepTheirID: a 503 is retried with River's backoff and
// a 429 with Retry-After snoozes the job; every attempt carries the same
// webhook-id, so the receiver can drop repeats.
func TestWebhookRetriesKeepTheirID(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(n int) (int, http.Header, string) {
		switch n {
		case 1:
			return 503, nil, "down for maintenance"
		case 2:
			return 429, http.Header{"Retry-After": {"1"}}, "slow down"
		}
		return 204, nil, ""
	})
	b := setup(t, rcv.srv.URL+"/hook", jobs.WebhookOptions{AllowPrivate: true})
	b.InsertEvents(t, "user_signed_up")
	// River's first retry comes after about a second.
	b.waitState(t, "completed")
	got := rcv.requests()
	require.Len(t, got, 3)
	require.Equal(t, got[0].header.Get("webhook-id"), got[1].header.Get("webhook-id"))
	require.Equal(t, got[0].header.Get("webhook-id"), got[2].header.Get("webhook-id"))
	require.GreaterOrEqual(t, got[2].at.Sub(got[1].at), 900*time.Millisecond, "Retry-After: 1 was honoured")
	for _, r := range got {
		require.NoError(t, webhook.Verify(secret, r.header, r.body, time.Minute))
	}
	var class2xx, class5xx float64
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "notified_webhook_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == "2xx" {
					class2xx += m.GetCounter().GetValue()
				}
				if l.GetName() == "class" && l.GetValue() == "5xx" {
					class5xx += m.GetCounter().GetValue()
				}
			}
		}
	}
	require.Equal(t, 1.0, class2xx)
	require.Equal(t, 1.0, class5xx)
}

// TestWebhookPermanentFailures: a 4xx answer, a redirect, a refused private
// target and a job whose route pointed nowhere end cancelled at once, with
// an error that says why.
func TestWebhookPermanentFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  func(int) (int, http.Header, string)
		private bool
		want    string
		calls   int
	}{
		{"404", func(int) (int, http.Header, string) { return 404, nil, "no such hook" }, true, `404`, 1},
		{"redirect", func(int) (int, http.Header, string) {
			return 302, http.Header{"Location": {"https://elsewhere.example/hook"}}, ""
		}, true, "redirects are not followed", 1},
		{"private target", func(int) (int, http.Header, string) { return 200, nil, "" }, false, "--webhook-allow-private", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newReceiver(t, tc.answer)
			b := setup(t, rcv.srv.URL+"/hook", jobs.WebhookOptions{AllowPrivate: tc.private})
			b.InsertEvents(t, "user_signed_up")
			b.waitState(t, "cancelled")
			_, _, attempt, lastErr, _ := b.job(t)
			require.Equal(t, 1, attempt)
			require.Contains(t, lastErr, tc.want)
			require.Len(t, rcv.requests(), tc.calls)
		})
	}
}

// TestWebhookSecretNotSet: a route whose secret variable the worker does
// not have is retried (the operator may set it), with an error that says
// which variable to set; nothing is sent unsigned.
func TestWebhookSecretNotSet(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(int) (int, http.Header, string) { return 200, nil, "" })
	b := setup(t, rcv.srv.URL+"/hook", jobs.WebhookOptions{AllowPrivate: true,
		LookupSecret: func(string) (string, bool) { return "", false }})
	b.InsertEvents(t, "user_signed_up")
	b.waitState(t, "retryable")
	_, _, _, lastErr, _ := b.job(t)
	require.Contains(t, lastErr, "webhook secret variable NOTIFIED_WEBHOOK_SECRET_TEST is not set in the worker's environment")
	require.Empty(t, rcv.requests())
}

// TestWebhookDeadLettersPerURL: two webhook routes of one event are two
// handlers: the one whose receiver refuses is a dead letter, whatever the
// other did, and retrying it replays that URL only.
func TestWebhookDeadLettersPerURL(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, func(int) (int, http.Header, string) { return 200, nil, "" })
	refused := newReceiver(t, func(int) (int, http.Header, string) { return 404, nil, "no such hook" })
	b := setup(t, refused.srv.URL+"/gone", jobs.WebhookOptions{AllowPrivate: true})
	require.NoError(t, routes.NewStore(b.DB.Pool, b.DB.Schema).Add(context.Background(), routes.Route{
		Event: "user_signed_up", Webhook: rcv.srv.URL + "/ok", SecretEnv: "NOTIFIED_WEBHOOK_SECRET_TEST"}))
	ids := b.InsertEvents(t, "user_signed_up")
	store := history.NewStore(b.DB.Pool, b.DB.Schema)
	testdb.WaitFor(t, 30*time.Second, func() (bool, string) {
		dead, err := store.DeadLetters(context.Background(), history.DeadLetterFilter{Channel: b.DB.Channel})
		require.NoError(t, err)
		return len(dead) == 1 && len(rcv.requests()) == 1, fmt.Sprintf("%d dead letters, %d deliveries", len(dead), len(rcv.requests()))
	})
	n, err := store.CountDeadLetters(context.Background(), b.DB.Channel, time.Time{})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	dead, err := store.DeadLetters(context.Background(), history.DeadLetterFilter{Channel: b.DB.Channel})
	require.NoError(t, err)
	require.Equal(t, ids[0], dead[0].EventID)
	require.Equal(t, refused.srv.URL+"/gone", dead[0].Webhook, "the dead letter names its URL")
	ev, err := store.Event(context.Background(), b.DB.Channel, ids[0])
	require.NoError(t, err)
	byURL := map[string]string{}
	for _, j := range ev.Jobs {
		byURL[j.Webhook] = j.State
	}
	require.Equal(t, map[string]string{refused.srv.URL + "/gone": "cancelled", rcv.srv.URL + "/ok": "completed"}, byURL)
	require.Equal(t, dead[0].ID, func() int64 {
		for _, j := range ev.Jobs {
			if j.Webhook == refused.srv.URL+"/gone" {
				return j.ID
			}
		}
		return 0
	}())

	// Retrying the dead letter replays its URL's route only.
	res, err := replay.Run(context.Background(), b.DB.Pool, b.Config, replay.Selector{Jobs: []int64{dead[0].ID}},
		replay.Options{Reason: "receiver fixed", RequestedBy: "test"})
	require.NoError(t, err)
	require.Equal(t, 1, res.Jobs)
	testdb.WaitFor(t, 30*time.Second, func() (bool, string) {
		return len(refused.requests()) == 2, fmt.Sprintf("%d calls to the refusing receiver", len(refused.requests()))
	})
	require.Len(t, rcv.requests(), 1, "the other URL is not called again")
}
