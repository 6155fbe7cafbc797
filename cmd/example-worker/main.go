// Command example-worker runs the handlers of package example as a worker
// process, to copy: it creates the example_audit table, declares the routes
// user_signed_up -> send_welcome_email, write_audit and order_placed ->
// call_webhook, write_audit, works their jobs with a River client until
// SIGINT or SIGTERM, and then stops gracefully.
//
//	DATABASE_URL=postgres://... NOTIFIED_SCHEMA=notified go run ./cmd/example-worker
//
// By default it needs no mail server and no webhook receiver: --smtp-addr
// builtin (the default) starts an in-process SMTP sink on 127.0.0.1 that logs
// each mail it receives, and --webhook-url builtin (the default) an
// in-process HTTP receiver that answers 200 and logs each call. Point them at
// real ones with --smtp-addr host:port and --webhook-url https://... .
// Run with -h for every flag and the environment variable behind it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/example"
	"github.com/notified/notified/internal/worker"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
)

// builtin, as --smtp-addr or --webhook-url, starts an in-process server.
const builtin = "builtin"

// Defaults of the worker's own settings.
const (
	defaultMaxWorkers  = 20
	defaultStopTimeout = 30 * time.Second
)

// River's job retention: completed jobs are kept a day, cancelled and
// discarded ones (the dead letters) a week. notified keeps every job's
// outcome in its own history for longer.
const (
	completedJobRetention = 24 * time.Hour
	cancelledJobRetention = 7 * 24 * time.Hour
	discardedJobRetention = 7 * 24 * time.Hour
)

// config is what the worker is told on the command line and in its
// environment.
type config struct {
	databaseURL    string
	schema         string
	smtpAddr       string // host:port, or builtin
	mailFrom       string
	webhookURL     string // URL, or builtin
	webhookTimeout time.Duration
	maxWorkers     int
	logLevel       string // as notified-bridge's --log-level
	logFormat      string // as notified-bridge's --log-format
	// stopTimeout is how long a stop waits for running jobs before it
	// cancels them; not a flag.
	stopTimeout time.Duration
}

// withDefaults fills the zero fields that have a default.
func (c config) withDefaults() config {
	if c.smtpAddr == "" {
		c.smtpAddr = builtin
	}
	if c.webhookURL == "" {
		c.webhookURL = builtin
	}
	if c.mailFrom == "" {
		c.mailFrom = example.DefaultMailFrom
	}
	if c.webhookTimeout == 0 {
		c.webhookTimeout = example.DefaultWebhookTimeout
	}
	if c.maxWorkers == 0 {
		c.maxWorkers = defaultMaxWorkers
	}
	if c.stopTimeout == 0 {
		c.stopTimeout = defaultStopTimeout
	}
	return c
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		var reported usageError
		if !errors.As(err, &reported) {
			fmt.Fprintln(os.Stderr, "example-worker: "+err.Error())
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger, err := example.NewLogger(os.Stderr, cfg.logLevel, cfg.logFormat) // checked by parseFlags
	if err != nil {
		fmt.Fprintln(os.Stderr, "example-worker: "+err.Error())
		os.Exit(2)
	}
	if err := run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "example-worker: "+err.Error())
		os.Exit(1)
	}
}

// usageError is a command-line error the flag set has reported already,
// with the usage.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parseFlags reads the flags in args; a flag not given falls back to its
// environment variable (read with getenv), then to its default. Usage and
// flag errors are written to output.
func parseFlags(args []string, getenv func(string) string, output io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("example-worker", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: example-worker [flags]

Runs the example handlers send_welcome_email, write_audit and call_webhook
for the jobs notified-bridge enqueues, until SIGINT or SIGTERM. Declares
their routes and creates the example_audit table at start-up.

Flags (each falls back to the environment variable named, then to the
default given):
`)
		fs.PrintDefaults()
	}
	// The flags' own defaults are zero so that the help shows the variable,
	// not its value (which may hold a password); withDefaults applies the
	// real defaults after the environment.
	envs := map[string]string{}
	str := func(p *string, name, env, usage string) {
		fs.StringVar(p, name, "", usage+" (default $"+env+")")
		envs[name] = env
	}
	str(&cfg.databaseURL, "database-url", "DATABASE_URL", "Postgres URL")
	str(&cfg.schema, "schema", "NOTIFIED_SCHEMA", "schema of River's and notified's tables, and of example_audit; the connection's current schema if unset")
	str(&cfg.smtpAddr, "smtp-addr", "EXAMPLE_SMTP_ADDR", "host:port of the SMTP server send_welcome_email uses, or builtin for an in-process sink on 127.0.0.1 that logs each mail; builtin if unset")
	str(&cfg.mailFrom, "mail-from", "EXAMPLE_MAIL_FROM", "sender of the welcome mail; "+example.DefaultMailFrom+" if unset")
	str(&cfg.webhookURL, "webhook-url", "EXAMPLE_WEBHOOK_URL", "URL call_webhook POSTs to, or builtin for an in-process receiver on 127.0.0.1 that answers 200 and logs each call; builtin if unset")
	fs.DurationVar(&cfg.webhookTimeout, "webhook-timeout", 0, "time limit of each call_webhook attempt; "+example.DefaultWebhookTimeout.String()+" if unset (default $EXAMPLE_WEBHOOK_TIMEOUT)")
	envs["webhook-timeout"] = "EXAMPLE_WEBHOOK_TIMEOUT"
	fs.IntVar(&cfg.maxWorkers, "max-workers", 0, "jobs worked at once; "+strconv.Itoa(defaultMaxWorkers)+" if unset (default $EXAMPLE_MAX_WORKERS)")
	envs["max-workers"] = "EXAMPLE_MAX_WORKERS"
	str(&cfg.logLevel, "log-level", "NOTIFIED_LOG_LEVEL", "debug, info, warn or error, as notified-bridge's --log-level; info if unset")
	str(&cfg.logFormat, "log-format", "NOTIFIED_LOG_FORMAT", "text, json, or auto (text on a terminal, JSON otherwise), as notified-bridge's --log-format; auto if unset")

	if err := fs.Parse(args); err != nil {
		return config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q: example-worker takes only flags (see -h)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := envs[f.Name]
		v := getenv(env)
		if err != nil || given[f.Name] || env == "" || v == "" {
			return
		}
		if f.Value.Set(v) != nil {
			want := "text"
			switch f.Value.(flag.Getter).Get().(type) {
			case time.Duration:
				want = "a duration such as 5s or 500ms"
			case int:
				want = "a whole number"
			}
			err = fmt.Errorf("$%s=%q is not valid for --%s: use %s", env, v, f.Name, want)
		}
	})
	if err != nil {
		return config{}, err
	}
	if _, err := example.NewLogger(io.Discard, cfg.logLevel, cfg.logFormat); err != nil {
		return config{}, err
	}
	if cfg.maxWorkers < 0 || given["max-workers"] && cfg.maxWorkers == 0 {
		return config{}, fmt.Errorf("max workers %d is out of range: use at least 1", cfg.maxWorkers)
	}
	if cfg.webhookTimeout < 0 {
		return config{}, fmt.Errorf("webhook timeout %s is negative: use a duration such as 5s", cfg.webhookTimeout)
	}
	return cfg.withDefaults(), nil
}

// run prepares the database, starts the built-in servers that were asked
// for and a River client working the example handlers, and works jobs until
// ctx is done; then it stops the client gracefully.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	if cfg.databaseURL == "" {
		return errors.New("no database: set DATABASE_URL or --database-url")
	}
	if cfg.maxWorkers < 1 {
		return fmt.Errorf("max workers %d is out of range: use at least 1", cfg.maxWorkers)
	}
	if err := migrations.ValidateSchema(cfg.schema); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("connect to the database: %w", err)
	}
	if err := migrations.Check(ctx, pool, cfg.schema); err != nil {
		return err
	}
	if err := example.EnsureAuditTable(ctx, pool, cfg.schema); err != nil {
		return err
	}
	if err := routes.NewStore(pool, cfg.schema).Ensure(ctx, example.Routes()...); err != nil {
		return err
	}

	// The built-in servers outlive ctx: jobs still running while the
	// client stops may need them.
	smtpAddr := cfg.smtpAddr
	if smtpAddr == builtin {
		sink, err := example.StartMailSink(context.WithoutCancel(ctx), "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer func() { _ = sink.Close() }()
		sink.OnMail(func(m example.Mail) { logMail(logger, m) })
		smtpAddr = sink.Addr()
		logger.Info("built-in SMTP sink listening; it logs each mail and delivers none", slog.String("addr", smtpAddr))
	}
	webhookURL := cfg.webhookURL
	if webhookURL == builtin {
		url, stop, err := startWebhookReceiver(logger)
		if err != nil {
			return err
		}
		defer stop()
		webhookURL = url
		logger.Info("built-in webhook receiver listening; it answers 200 to each call and logs it", slog.String("url", webhookURL))
	}

	workers := river.NewWorkers()
	if err := example.Register(workers, example.Config{
		Pool:           pool,
		Schema:         cfg.schema,
		SMTPAddr:       smtpAddr,
		MailFrom:       cfg.mailFrom,
		WebhookURL:     webhookURL,
		WebhookTimeout: cfg.webhookTimeout,
	}); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:                      cfg.schema,
		Logger:                      logger,
		Queues:                      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.maxWorkers}},
		Workers:                     workers,
		CompletedJobRetentionPeriod: completedJobRetention,
		CancelledJobRetentionPeriod: cancelledJobRetention,
		DiscardedJobRetentionPeriod: discardedJobRetention,
	})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	// Cancelling the context given to Start would cancel running jobs at
	// once; the stop below is graceful first.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	kinds := []string{example.SendWelcomeEmail{}.Kind(), example.WriteAudit{}.Kind(), example.CallWebhook{}.Kind()}
	logger.Info("worker running", slog.Any("kinds", kinds), slog.Int("max_workers", cfg.maxWorkers))
	<-ctx.Done()
	return worker.StopClient(client, cfg.stopTimeout, logger)
}

// logMail logs a mail the built-in sink received.
func logMail(logger *slog.Logger, m example.Mail) {
	attrs := []any{slog.String("from", m.From), slog.Any("to", m.To)}
	if msg, err := mail.ReadMessage(strings.NewReader(m.Data)); err == nil {
		attrs = append(attrs, slog.String("subject", msg.Header.Get("Subject")), slog.String("message_id", msg.Header.Get("Message-ID")))
	}
	logger.Info("mail received by the built-in SMTP sink", attrs...)
}

// startWebhookReceiver serves a webhook receiver on 127.0.0.1 that answers
// 200 to every POST and logs it. It returns the receiver's URL and a
// function that shuts it down and waits for it.
func startWebhookReceiver(logger *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("built-in webhook receiver: %w", err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { receiveWebhook(logger, w, r) }),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}
	return "http://" + ln.Addr().String() + "/webhook", stop, nil
}

// receiveWebhook is the built-in receiver's handler.
func receiveWebhook(logger *slog.Logger, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var body struct {
		EventID   string          `json:"event_id"`
		EventName string          `json:"event_name"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "body is not the JSON of an event: "+err.Error(), http.StatusBadRequest)
		return
	}
	logger.Info("webhook received by the built-in receiver",
		slog.String("event_id", body.EventID), slog.String("event_name", body.EventName),
		slog.String("idempotency_key", r.Header.Get("Idempotency-Key")), slog.String("data", string(body.Data)))
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"received":true}`+"\n")
}
