package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/example"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/trigger"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWorker runs the worker in-process until the test ends, logging to
// the returned buffer, and waits until it has declared its routes.
func startWorker(t *testing.T, db *testdb.DB, cfg config) (logs *syncBuffer, stop func() error) {
	t.Helper()
	logs = &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logger) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				err = errors.New("worker did not stop within a minute")
			}
		})
		return err
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(logs.String(), "worker running"), "worker not running; logs:\n" + logs.String()
	})
	n := testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "notified_route"}.Sanitize())
	require.Equal(t, len(example.Routes()), n, "routes declared at start-up")
	return logs, stop
}

func TestWorkerRunsExampleHandlersForBridgedEvents(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	table := db.Schema + ".signups"
	testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, name text, email text)")
	_, err := trigger.Install(ctx, db.Pool, trigger.Options{Schema: db.Schema, Table: table, Channel: db.Channel})
	require.NoError(t, err)

	// The built-in mail sink and webhook receiver are the defaults.
	logs, stop := startWorker(t, db, config{databaseURL: db.URL, schema: db.Schema})

	b, err := bridge.New(ctx, db.Pool, bridge.Config{Schema: db.Schema, Table: table, Channel: db.Channel,
		PollInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	bridgeCtx, stopBridge := context.WithCancel(ctx)
	bridgeDone := make(chan error, 1)
	go func() { bridgeDone <- b.Run(bridgeCtx) }()
	defer func() {
		stopBridge()
		require.NoError(t, <-bridgeDone)
	}()

	var signup, order string
	require.NoError(t, db.Pool.QueryRow(ctx, "INSERT INTO "+table+" (name, email) VALUES ('user_signed_up', 'ada@example.com') RETURNING id::text").Scan(&signup))
	require.NoError(t, db.Pool.QueryRow(ctx, "INSERT INTO "+table+" (name) VALUES ('order_placed') RETURNING id::text").Scan(&order))

	want := []string{
		order + " call_webhook completed {\"status\": 200}",
		order + " write_audit completed {\"inserted\": true}",
		signup + " send_welcome_email completed {\"sent_to\": \"ada@example.com\"}",
		signup + " write_audit completed {\"inserted\": true}",
	}
	sort.Strings(want)
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		rows, err := db.Pool.Query(ctx, `SELECT args->>'event_id' || ' ' || kind || ' ' || state || ' ' || coalesce(metadata->>'output', '-')
			FROM `+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+` ORDER BY 1`)
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("jobs %q, want %q", got, want)
	})
	require.Equal(t, 2, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+pgx.Identifier{db.Schema, "example_audit"}.Sanitize()))

	require.NoError(t, stop())
	out := logs.String()
	require.Regexp(t, `msg="mail received by the built-in SMTP sink" from=notified@example.com to=\[ada@example.com\] subject=Welcome!`, out)
	require.Regexp(t, `msg="webhook received by the built-in receiver" event_id=`+order+` event_name=order_placed idempotency_key=`+regexp.QuoteMeta(db.Channel+":"+order+":call_webhook"), out)
	require.Contains(t, out, `msg=stopped`)
}

func TestWorkerCancelsJobsStillRunningAfterStopTimeout(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	arrived := make(chan struct{}, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hang up
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(hook.Close)

	logs, stop := startWorker(t, db, config{databaseURL: db.URL, schema: db.Schema,
		webhookURL: hook.URL, webhookTimeout: time.Minute, stopTimeout: 200 * time.Millisecond})

	inserter, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{Schema: db.Schema})
	require.NoError(t, err)
	res, err := inserter.Insert(ctx, jobs.Args[example.CallWebhook]{Payload: jobs.Payload{
		EventID: "1", EventName: "order_placed", Channel: "events", Data: []byte(`{"id":1}`),
	}}, nil)
	require.NoError(t, err)
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the webhook was not called; logs:\n%s", logs.String())
	}

	start := time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(start), 10*time.Second)
	require.Contains(t, logs.String(), "jobs still running after the stop timeout: cancelling them")

	// River puts a job cancelled by its own stop back in the queue at once,
	// without recording an error: another worker runs it.
	var state string
	var errs int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT state, coalesce(array_length(errors, 1), 0)
		FROM `+pgx.Identifier{db.Schema, "river_job"}.Sanitize()+` WHERE id = $1`, res.Job.ID).Scan(&state, &errs))
	require.Equal(t, "available", state, "logs:\n%s", logs.String())
	require.Zero(t, errs)
}

func TestWorkerNeedsADatabase(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), config{}, slog.New(slog.DiscardHandler))
	require.EqualError(t, err, "no database: set DATABASE_URL or --database-url")
}

func TestWorkerNeedsAMigratedSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	err := run(context.Background(), config{databaseURL: db.URL, schema: db.Schema}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "run `notified-bridge migrate --schema "+db.Schema+"` first")
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseFlags(nil, env(), io.Discard)
		require.NoError(t, err)
		require.Equal(t, config{smtpAddr: "builtin", webhookURL: "builtin", mailFrom: "notified@example.com",
			webhookTimeout: 5 * time.Second, maxWorkers: 20, stopTimeout: 30 * time.Second}, cfg)
	})

	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseFlags(nil, env(
			"DATABASE_URL", "postgres://db/app", "NOTIFIED_SCHEMA", "notified",
			"EXAMPLE_SMTP_ADDR", "mail:25", "EXAMPLE_MAIL_FROM", "hello@example.org",
			"EXAMPLE_WEBHOOK_URL", "https://hooks.example.org/x", "EXAMPLE_WEBHOOK_TIMEOUT", "750ms",
			"EXAMPLE_MAX_WORKERS", "3",
		), io.Discard)
		require.NoError(t, err)
		require.Equal(t, config{databaseURL: "postgres://db/app", schema: "notified", smtpAddr: "mail:25",
			mailFrom: "hello@example.org", webhookURL: "https://hooks.example.org/x", webhookTimeout: 750 * time.Millisecond,
			maxWorkers: 3, stopTimeout: 30 * time.Second}, cfg)
	})

	t.Run("log format and level as the bridge's", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseFlags([]string{"--log-level", "debug"}, env("NOTIFIED_LOG_FORMAT", "json", "NOTIFIED_LOG_LEVEL", "warn"), io.Discard)
		require.NoError(t, err)
		require.Equal(t, "json", cfg.logFormat)
		require.Equal(t, "debug", cfg.logLevel)
	})

	t.Run("flags win over the environment", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseFlags([]string{"--database-url", "postgres://flag/db", "--smtp-addr", "builtin",
			"--webhook-timeout", "2s", "--max-workers", "7", "--schema", "s1"},
			env("DATABASE_URL", "postgres://env/db", "EXAMPLE_SMTP_ADDR", "mail:25", "EXAMPLE_WEBHOOK_TIMEOUT", "nonsense",
				"EXAMPLE_MAX_WORKERS", "nonsense", "NOTIFIED_SCHEMA", "s2"), io.Discard)
		require.NoError(t, err)
		require.Equal(t, "postgres://flag/db", cfg.databaseURL)
		require.Equal(t, "builtin", cfg.smtpAddr)
		require.Equal(t, 2*time.Second, cfg.webhookTimeout)
		require.Equal(t, 7, cfg.maxWorkers)
		require.Equal(t, "s1", cfg.schema)
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			args []string
			env  []string
			err  string
		}{
			{nil, []string{"EXAMPLE_WEBHOOK_TIMEOUT", "5"}, `$EXAMPLE_WEBHOOK_TIMEOUT="5" is not valid for --webhook-timeout: use a duration such as 5s or 500ms`},
			{nil, []string{"EXAMPLE_MAX_WORKERS", "many"}, `$EXAMPLE_MAX_WORKERS="many" is not valid for --max-workers: use a whole number`},
			{[]string{"--max-workers", "0"}, nil, "max workers 0 is out of range: use at least 1"},
			{nil, []string{"EXAMPLE_MAX_WORKERS", "-2"}, "max workers -2 is out of range: use at least 1"},
			{[]string{"--webhook-timeout", "-1s"}, nil, "webhook timeout -1s is negative: use a duration such as 5s"},
			{[]string{"extra"}, nil, `unexpected argument "extra": example-worker takes only flags (see -h)`},
			{nil, []string{"NOTIFIED_LOG_FORMAT", "xml"}, `log format "xml" is not one of text, json, auto`},
			{[]string{"--log-level", "loud"}, nil, `log level "loud" is not one of debug, info, warn, error`},
		} {
			_, err := parseFlags(tt.args, env(tt.env...), io.Discard)
			require.EqualError(t, err, tt.err, "args %q env %q", tt.args, tt.env)
		}
		var out bytes.Buffer
		_, err := parseFlags([]string{"--max-workers", "x"}, env(), &out)
		var usage usageError
		require.ErrorAs(t, err, &usage)
		require.Contains(t, out.String(), `invalid value "x" for flag -max-workers`)
	})

	t.Run("help names every variable", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		_, err := parseFlags([]string{"-h"}, env("DATABASE_URL", "postgres://user:secret@db/app"), &out)
		require.ErrorIs(t, err, flag.ErrHelp)
		help := out.String()
		for _, v := range []string{"DATABASE_URL", "NOTIFIED_SCHEMA", "EXAMPLE_SMTP_ADDR", "EXAMPLE_MAIL_FROM",
			"EXAMPLE_WEBHOOK_URL", "EXAMPLE_WEBHOOK_TIMEOUT", "EXAMPLE_MAX_WORKERS", "NOTIFIED_LOG_LEVEL", "NOTIFIED_LOG_FORMAT"} {
			require.Contains(t, help, "(default $"+v+")")
		}
		require.NotContains(t, help, "secret", "the help does not show the environment's values")
	})
}

// TestBinaryStopsOnSIGTERM builds the command and runs it as a user would:
// it starts with only the environment, and SIGTERM stops it with exit code 0.
func TestBinaryStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	binary := filepath.Join(t.TempDir(), "example-worker")
	build := exec.Command("go", "build", "-o", binary, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	cmd := exec.Command(binary)
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "DATABASE_URL" && !strings.HasPrefix(k, "NOTIFIED_") && !strings.HasPrefix(k, "EXAMPLE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DATABASE_URL="+db.URL, "NOTIFIED_SCHEMA="+db.Schema, "EXAMPLE_MAX_WORKERS=2")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		return strings.Contains(stderr.String(), "worker running"), "not running; stderr:\n" + stderr.String()
	})
	// Its standard error is no terminal: JSON lines, as the bridge's.
	require.Contains(t, stderr.String(), `"max_workers":2`)
	require.Contains(t, stderr.String(), "built-in SMTP sink listening")
	require.Contains(t, stderr.String(), "built-in webhook receiver listening")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "exit; stderr:\n%s", stderr.String())
	case <-time.After(40 * time.Second):
		t.Fatalf("did not exit after SIGTERM; stderr:\n%s", stderr.String())
	}
	require.Contains(t, stderr.String(), `"msg":"stopped"`)
}
