package example

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/notified/notified/jobs"
)

// webhook is the handler of CallWebhook.
type webhook struct {
	cfg Config
}

// webhookBody is the JSON CallWebhook POSTs.
type webhookBody struct {
	EventID   string          `json:"event_id"`
	EventName string          `json:"event_name"`
	Data      json.RawMessage `json:"data"`
}

// idempotencyKey returns the Idempotency-Key header CallWebhook sends for an
// event: "<channel>:<event id>:call_webhook", the same on every attempt.
func idempotencyKey(ev jobs.Event) string {
	return ev.Channel + ":" + ev.ID + ":" + CallWebhook{}.Kind()
}

// handle POSTs the event. 2xx completes the job; 408, 429, 5xx, a timeout
// or a connection error is retried; any other 4xx cancels it.
func (h *webhook) handle(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
	data := ev.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	body, err := json.Marshal(webhookBody{EventID: ev.ID, EventName: ev.Name, Data: data})
	if err != nil {
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("encode event %s for the webhook: %w", ev.ID, err))
	}

	// Each attempt gets its own deadline; the job's context also ends it
	// when the worker stops.
	attemptCtx, cancel := context.WithTimeout(ctx, h.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, h.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("webhook request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idempotencyKey(ev))
	req.Header.Set("User-Agent", "notified-example")

	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return jobs.Result{}, fmt.Errorf("call webhook for event %s: no response within %s: %w", ev.ID, h.cfg.WebhookTimeout, err)
		}
		return jobs.Result{}, fmt.Errorf("call webhook for event %s: %w", ev.ID, err)
	}
	defer func() {
		// Read a little more so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return jobs.Success(map[string]int{"status": code}), nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		err := fmt.Errorf("webhook for event %s answered %s%s", ev.ID, resp.Status, excerpt(resp.Body))
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			err = fmt.Errorf("%w (Retry-After: %s; retried with River's backoff)", err, ra)
		}
		return jobs.Result{}, err
	case code >= 400 && code < 500:
		// The request is wrong or unwelcome: sending it again will not help.
		return jobs.Result{}, jobs.Permanent(fmt.Errorf("webhook for event %s answered %s%s", ev.ID, resp.Status, excerpt(resp.Body)))
	default:
		// 5xx, and anything unexpected: the receiver may recover.
		return jobs.Result{}, fmt.Errorf("webhook for event %s answered %s%s", ev.ID, resp.Status, excerpt(resp.Body))
	}
}

// excerptLen is how much of a response body an error quotes, in characters.
const excerptLen = 200

// excerpt returns ": " and the start of body, quoted, on one line, or "" for
// an empty body.
func excerpt(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4*excerptLen))
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if s == "" {
		return ""
	}
	if utf8.RuneCountInString(s) > excerptLen {
		s = string([]rune(s)[:excerptLen]) + "..."
	}
	return fmt.Sprintf(": %q", s)
}
