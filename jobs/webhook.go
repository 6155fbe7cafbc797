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
	// Registerer, when set, gets the delivery metrics:
	// notified_webhook_requests_total{route,class} and
	// notified_webhook_request_duration_seconds{route}.
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
// first KiB as its output. 408, 429 and 5xx, timeouts and connection
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
	lookup func(string) (string, bool)
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
	return &webhookHandler{d: d, lookup: lookup}, nil
}

// webhookMeta is the part of a webhook job's metadata the handler reads.
type webhookMeta struct {
	Notified struct {
		Webhook *WebhookTarget `json:"webhook"`
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
		return Success(WebhookOutput{URL: target.URL, Status: res.Status, Body: res.Excerpt, DurationMS: res.Duration.Milliseconds()}), nil
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
