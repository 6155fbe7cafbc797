package example

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
)

// SendWelcomeEmail is the handler kind that mails a welcome message over
// SMTP to the address in the event row's email column, greeting the row's
// name column when it holds something other than the event's name. A row
// with no valid address, and a 5xx reply, cancel the job; a connection error
// or a 4xx reply is retried. Its output is {"sent_to": address}.
type SendWelcomeEmail struct{}

// Kind returns "send_welcome_email".
func (SendWelcomeEmail) Kind() string { return "send_welcome_email" }

// WriteAudit is the handler kind that records the event, with its row, in
// the example_audit table, once per event id and name: a repeat inserts
// nothing. A database error is retried. Its output is {"inserted": bool}.
type WriteAudit struct{}

// Kind returns "write_audit".
func (WriteAudit) Kind() string { return "write_audit" }

// CallWebhook is the handler kind that POSTs {"event_id", "event_name",
// "data"} as JSON to Config.WebhookURL, with the header Idempotency-Key:
// "<channel>:<event id>:call_webhook", each attempt bounded by
// Config.WebhookTimeout. A 2xx answer completes the job with the output
// {"status": code}; a timeout, a connection error, 408, 429 and 5xx are
// retried; any other 4xx cancels the job.
type CallWebhook struct{}

// Kind returns "call_webhook".
func (CallWebhook) Kind() string { return "call_webhook" }

// Defaults for the optional fields of Config.
const (
	DefaultMailFrom       = "notified@example.com"
	DefaultWebhookTimeout = 5 * time.Second
)

// Config is what the handlers need. Pool, SMTPAddr and WebhookURL are
// required; the zero value of every other field means its default.
type Config struct {
	// Pool is the database WriteAudit writes to.
	Pool *pgxpool.Pool
	// Schema holds the example_audit table; empty means the connection's
	// current schema.
	Schema string
	// SMTPAddr is the host:port of the SMTP server SendWelcomeEmail uses.
	SMTPAddr string
	// MailFrom is the sender of the welcome mail; default
	// notified@example.com.
	MailFrom string
	// WebhookURL is the http or https URL CallWebhook POSTs to.
	WebhookURL string
	// WebhookTimeout bounds each attempt of CallWebhook, from connecting to
	// reading the response; default 5s.
	WebhookTimeout time.Duration
	// HTTPClient sends the webhook requests. The default is a client with no
	// overall timeout: the context of each attempt bounds it.
	HTTPClient *http.Client
}

// withDefaults returns c with its optional zero fields set.
func (c Config) withDefaults() Config {
	if c.MailFrom == "" {
		c.MailFrom = DefaultMailFrom
	}
	if c.WebhookTimeout == 0 {
		c.WebhookTimeout = DefaultWebhookTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c
}

// validate reports the first thing wrong with c, after defaults, naming the
// flag and environment variable of cmd/example-worker that sets it.
func (c Config) validate() error {
	if c.Pool == nil {
		return errors.New("example: no database pool for write_audit")
	}
	if err := migrations.ValidateSchema(c.Schema); err != nil {
		return fmt.Errorf("example: %w", err)
	}
	if c.SMTPAddr == "" {
		return errors.New("example: no SMTP server for send_welcome_email: set --smtp-addr or $EXAMPLE_SMTP_ADDR (host:port)")
	}
	if _, err := parseAddress(c.MailFrom); err != nil {
		return fmt.Errorf("example: sender %q is not a mail address: set --mail-from or $EXAMPLE_MAIL_FROM", c.MailFrom)
	}
	if c.WebhookURL == "" {
		return errors.New("example: no webhook URL for call_webhook: set --webhook-url or $EXAMPLE_WEBHOOK_URL")
	}
	u, err := url.Parse(c.WebhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("example: webhook URL %q is not an absolute http or https URL: set --webhook-url or $EXAMPLE_WEBHOOK_URL", c.WebhookURL)
	}
	if c.WebhookTimeout < 0 {
		return fmt.Errorf("example: webhook timeout %s is negative: set --webhook-timeout or $EXAMPLE_WEBHOOK_TIMEOUT to a duration such as 5s", c.WebhookTimeout)
	}
	return nil
}

// Register validates cfg and registers the handlers of SendWelcomeEmail,
// WriteAudit and CallWebhook on workers.
func Register(workers *river.Workers, cfg Config) error {
	if workers == nil {
		return errors.New("example: workers is nil")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := jobs.Handle[SendWelcomeEmail](workers, (&mailer{cfg: cfg}).handle); err != nil {
		return err
	}
	if err := jobs.Handle[WriteAudit](workers, (&auditor{db: cfg.Pool, schema: cfg.Schema}).handle); err != nil {
		return err
	}
	return jobs.Handle[CallWebhook](workers, (&webhook{cfg: cfg}).handle)
}

// Routes returns the routes to the example handlers: user_signed_up to
// send_welcome_email and write_audit, order_placed to call_webhook and
// write_audit, in the default queue with River's default attempts. Declare
// them with routes.Store.Ensure at start-up.
func Routes() []routes.Route {
	return []routes.Route{
		{Event: "user_signed_up", Kind: SendWelcomeEmail{}.Kind()},
		{Event: "user_signed_up", Kind: WriteAudit{}.Kind()},
		{Event: "order_placed", Kind: CallWebhook{}.Kind()},
		{Event: "order_placed", Kind: WriteAudit{}.Kind()},
	}
}
