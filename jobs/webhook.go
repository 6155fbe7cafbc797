package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/notified/notified/internal/webhook"
	"github.com/notified/notified/routes"
)

// WebhookOptions configure the built-in webhook handler (RegisterWebhooks).
// The zero value delivers with a 10-second timeout to public addresses
// only, reading secrets from the process's environment.
type WebhookOptions struct {
	// Timeout bounds each request, reading the answer included (default
	// 10s). A request that times out is retried.
	Timeout time.Duration
	// AllowPrivate lets routes target private, loopback and link-local
	// addresses. By default they are refused, so that whoever can add a
	// route cannot make the worker a proxy into its own network.
	AllowPrivate bool
	// AllowCIDRs are address ranges allowed even though private (an
	// internal service's subnet, say).
	AllowCIDRs []netip.Prefix
	// MaxResponseBytes is how much of an answer is read (default 64 KiB);
	// the first KiB is recorded as the job's output or error.
	MaxResponseBytes int64
	// LookupSecret returns the value of the named variable, which holds a
	// route's signing secret (default os.LookupEnv). Only names that start
	// with routes.SecretEnvPrefix are ever looked up.
	LookupSecret func(name string) (string, bool)
	// OrderedCompletions is how many delivered jobs of ordered routes a
	// second are completed at once, each in a transaction of its own
	// (CompleteNow), so that the next delivery of the lane starts as soon
	// as one is done, instead of when River's completer next records a
	// batch (every 250 ms when few wait: a busy key would get 4
	// deliveries a second). Beyond it they are left to River's completer,
	// whose batches cost the database far less when many keys are busy
	// at once. Default DefaultOrderedCompletions; negative: none.
	OrderedCompletions int
	// Registerer, when set, gets the delivery metrics:
	// notified_webhook_requests_total{route,class},
	// notified_webhook_request_duration_seconds{route} and
	// notified_webhook_ordered_completions_total{how}.
	Registerer prometheus.Registerer
}

// WebhookOutput is the output a delivered webhook job records.
type WebhookOutput struct {
	URL        string `json:"url"`
	Status     int    `json:"status"`
	Body       string `json:"body,omitempty"` // the answer's first KiB
	DurationMS int64  `json:"duration_ms"`
}

// RegisterWebhooks registers the built-in webhook handler, the worker of
// the kind routes.WebhookKind: for each job it POSTs the event to the URL
// its route had when the job was made, signed per Standard Webhooks with
// the secret in the variable the route names. The body is the event as
// JSON: event_id, event_name, channel and data (the row). The header
// webhook-id is the same for every attempt of a job, so receivers can drop
// repeats by it.
//
// A 2xx answer completes the job, recording the status and the answer's
// first KiB as its output; for an ordered route, at once (CompleteNow, up
// to WebhookOptions.OrderedCompletions a second), so that the lane's next
// delivery can start. 408, 429 and 5xx, timeouts and connection
// errors are retried with River's backoff; a Retry-After header is honoured
// by snoozing the job that long. A redirect (never followed), any other
// 4xx, a refused address or a missing secret cancels the job: a permanent
// failure, shown in dead letters.
//
// The webhook queue (routes.WebhookQueue) should be worked by a client that
// registers this handler; `notified-bridge work` is one.
func RegisterWebhooks(workers *river.Workers, opts WebhookOptions) error {
	h, err := newWebhookHandler(opts)
	if err != nil {
		return err
	}
	return handleFunc("jobs.RegisterWebhooks", workers, routes.WebhookKind, h.handle)
}

type webhookHandler struct {
	d      *webhook.Deliverer
	m      *webhook.Metrics // nil: none
	lookup func(string) (string, bool)
	atOnce *budget // the ordered deliveries completed at once; nil: none
}

// DefaultOrderedCompletions is WebhookOptions.OrderedCompletions's
// default: ordered deliveries a second completed at once.
const DefaultOrderedCompletions = 100

// budget allows up to rate events a second, in bursts of up to a tenth of
// that (at least one): a token bucket. A nil budget allows none.
type budget struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBudget(rate float64) *budget {
	return &budget{rate: rate, tokens: max(1, rate/10)}
}

// take takes one event from the budget at now, if it has one left.
func (b *budget) take(now time.Time) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(max(1, b.rate/10), b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func newWebhookHandler(opts WebhookOptions) (*webhookHandler, error) {
	var m *webhook.Metrics
	if opts.Registerer != nil {
		m = webhook.NewMetrics()
		if err := opts.Registerer.Register(m); err != nil {
			return nil, fmt.Errorf("jobs.RegisterWebhooks: register metrics: %w", err)
		}
	}
	d, err := webhook.New(webhook.Options{Timeout: opts.Timeout, AllowPrivate: opts.AllowPrivate, AllowCIDRs: opts.AllowCIDRs,
		MaxResponseBytes: opts.MaxResponseBytes, Metrics: m})
	if err != nil {
		return nil, fmt.Errorf("jobs.RegisterWebhooks: %w", err)
	}
	lookup := opts.LookupSecret
	if lookup == nil {
		lookup = os.LookupEnv
	}
	h := &webhookHandler{d: d, m: m, lookup: lookup}
	switch {
	case opts.OrderedCompletions == 0:
		h.atOnce = newBudget(DefaultOrderedCompletions)
	case opts.OrderedCompletions > 0:
		h.atOnce = newBudget(float64(opts.OrderedCompletions))
	}
	return h, nil
}

// webhookMeta is the part of a webhook job's metadata the handler reads.
type webhookMeta struct {
	Notified struct {
		Webhook *WebhookTarget  `json:"webhook"`
		Lane    json.RawMessage `json:"lane"` // any JSON: only its presence is read
	} `json:"notified"`
	Snoozes int `json:"snoozes"`
}

func (h *webhookHandler) handle(ctx context.Context, ev Event) (Result, error) {
	var meta webhookMeta
	if err := json.Unmarshal(ev.Job.Metadata, &meta); err != nil || meta.Notified.Webhook == nil || meta.Notified.Webhook.URL == "" {
		return Result{}, river.JobCancel(fmt.Errorf("webhook job %d names no URL in its metadata (notified.webhook.url): it was not made by a webhook route", ev.Job.ID))
	}
	target := meta.Notified.Webhook
	secret := ""
	if target.SecretEnv != "" {
		if !strings.HasPrefix(target.SecretEnv, routes.SecretEnvPrefix) {
			return Result{}, river.JobCancel(fmt.Errorf("webhook secret variable %q does not start with %s: the worker reads no other", target.SecretEnv, routes.SecretEnvPrefix))
		}
		v, ok := h.lookup(target.SecretEnv)
		if !ok || v == "" {
			// Retried: the operator may set it and restart the worker.
			return Result{}, fmt.Errorf("webhook secret variable %s is not set in the worker's environment: set it (whsec_...) and restart the worker", target.SecretEnv)
		}
		secret = v
	}
	body, err := json.Marshal(Payload{EventID: ev.ID, EventName: ev.Name, Channel: ev.Channel, Data: ev.Data})
	if err != nil {
		return Result{}, river.JobCancel(fmt.Errorf("encode event %s for its webhook: %w", ev.ID, err))
	}
	res := h.d.Deliver(ctx, webhook.Request{URL: target.URL, Secret: secret, MsgID: webhookMsgID(ev.Job.ID), Body: body,
		Route: ev.Name + " -> " + metricURL(target.URL)})
	switch res.Outcome {
	case webhook.Delivered:
		out := WebhookOutput{URL: target.URL, Status: res.Status, Body: res.Excerpt, DurationMS: res.Duration.Milliseconds()}
		if len(meta.Notified.Lane) > 0 && string(meta.Notified.Lane) != "null" {
			// The next delivery of the lane waits for this job's
			// completion: recorded now, it does not wait for River's
			// completer too (see OrderedCompletions). If it fails, River's
			// completer completes the job as usual.
			switch {
			case !h.atOnce.take(time.Now()):
				h.m.OrderedCompletion(webhook.CompletedInBatch)
			case CompleteNow(ctx, ev, out) != nil:
				h.m.OrderedCompletion(webhook.CompletionAtOnceFail)
			default:
				h.m.OrderedCompletion(webhook.CompletedAtOnce)
			}
		}
		return Success(out), nil
	case webhook.Retry:
		if res.RetryAfter > 0 && meta.Snoozes < ev.Job.MaxAttempts {
			return Result{}, river.JobSnooze(res.RetryAfter)
		}
		return Result{}, webhookError(res)
	default:
		return Result{}, river.JobCancel(webhookError(res))
	}
}

// webhookError is the error a job records for an answer or failure.
func webhookError(res webhook.Result) error {
	err := res.Err
	if err == nil {
		err = errors.New("delivery failed")
	}
	if res.Status != 0 && res.Excerpt != "" {
		return fmt.Errorf("%w: answered %s", err, strconv.Quote(res.Excerpt))
	}
	return err
}

// webhookMsgID is the webhook-id of a job: the same for every attempt.
func webhookMsgID(jobID int64) string { return "msg_notified_" + strconv.FormatInt(jobID, 10) }

// metricURL is the URL as the metrics label it: scheme, host and path, but
// not the query, where webhook URLs often carry tokens.
func metricURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
