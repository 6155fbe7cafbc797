package example_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/example"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

const waitTimeout = 15 * time.Second

// quickRetry retries a failed job after 10ms instead of River's backoff.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(10 * time.Millisecond)
}

// testBundle is one test's database, mail sink and River client working the
// example handlers.
type testBundle struct {
	db     *testdb.DB
	sink   *example.MailSink
	client *river.Client[pgx.Tx]
}

type setupOpts struct {
	// webhook answers CallWebhook; default a handler answering 200.
	webhook http.HandlerFunc
	// webhookTimeout is Config.WebhookTimeout; default 5s.
	webhookTimeout time.Duration
	// smtpAddr replaces the sink's address.
	smtpAddr string
}

func setup(t *testing.T, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.webhook == nil {
		o.webhook = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	}
	ctx := context.Background()
	db := testdb.New(t)
	require.NoError(t, example.EnsureAuditTable(ctx, db.Pool, db.Schema))

	sink, err := example.StartMailSink(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sink.Close()) })
	srv := httptest.NewServer(o.webhook)
	t.Cleanup(srv.Close)
	if o.smtpAddr == "" {
		o.smtpAddr = sink.Addr()
	}

	workers := river.NewWorkers()
	require.NoError(t, example.Register(workers, example.Config{
		Pool:           db.Pool,
		Schema:         db.Schema,
		SMTPAddr:       o.smtpAddr,
		WebhookURL:     srv.URL + "/hooks/orders",
		WebhookTimeout: o.webhookTimeout,
	}))
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Schema:            db.Schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		RetryPolicy:       quickRetry{},
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, client.Stop(ctx))
	})
	return &testBundle{db: db, sink: sink, client: client}
}

// event is the payload of a job for event id named name with row data.
func event(id, name, data string) jobs.Payload {
	return jobs.Payload{EventID: id, EventName: name, Channel: "events", Data: json.RawMessage(data)}
}

// insert inserts one job of kind K for the event, as the bridge would.
func insert[K jobs.Kind](t *testing.T, tb *testBundle, p jobs.Payload, maxAttempts int) int64 {
	t.Helper()
	res, err := tb.client.Insert(context.Background(), jobs.Args[K]{Payload: p}, &river.InsertOpts{MaxAttempts: maxAttempts})
	require.NoError(t, err)
	return res.Job.ID
}

// finalJob is what a test checks of a finished job.
type finalJob struct {
	State   rivertype.JobState
	Attempt int
	Errors  []string
	Output  string // metadata->'output' as JSON text, "" when absent
}

// waitFinal waits until the job is completed, cancelled or discarded, and
// returns it as river_job holds it.
func waitFinal(t *testing.T, tb *testBundle, id int64) finalJob {
	t.Helper()
	var j finalJob
	testdb.WaitFor(t, waitTimeout, func() (bool, string) {
		var errs []rivertype.AttemptError
		var output *string
		err := tb.db.Pool.QueryRow(context.Background(), `SELECT state, attempt, errors, (metadata->'output')::text
			FROM `+pgx.Identifier{tb.db.Schema, "river_job"}.Sanitize()+` WHERE id = $1`, id).
			Scan(&j.State, &j.Attempt, &errs, &output)
		if err != nil {
			return false, fmt.Sprintf("read job %d: %v", id, err)
		}
		j.Errors = j.Errors[:0]
		for _, e := range errs {
			j.Errors = append(j.Errors, e.Error)
		}
		j.Output = ""
		if output != nil {
			j.Output = *output
		}
		switch j.State {
		case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
			return true, ""
		}
		return false, fmt.Sprintf("job %d is %s at attempt %d, errors %q", id, j.State, j.Attempt, j.Errors)
	})
	return j
}

// statuses answers with each status in turn, then 200, and counts requests.
func statuses(n *atomic.Int32, codes ...int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(codes) {
			w.WriteHeader(codes[i])
			_, _ = fmt.Fprintf(w, "answer %d is %d", i+1, codes[i])
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func TestCallWebhookCompletes(t *testing.T) {
	t.Parallel()
	type request struct {
		method, path, contentType, key string
		body                           map[string]any
	}
	var mu sync.Mutex
	var got []request
	tb := setup(t, setupOpts{webhook: func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req := request{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), key: r.Header.Get("Idempotency-Key")}
		if err := json.Unmarshal(b, &req.body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}})

	id := insert[example.CallWebhook](t, tb, event("42", "order_placed", `{"id":42,"name":"order_placed","total":"9.90"}`), 3)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State, "errors: %q", j.Errors)
	require.Equal(t, 1, j.Attempt)
	require.JSONEq(t, `{"status": 200}`, j.Output)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 1)
	require.Equal(t, request{
		method: http.MethodPost, path: "/hooks/orders", contentType: "application/json",
		key: "events:42:call_webhook",
		body: map[string]any{
			"event_id": "42", "event_name": "order_placed",
			"data": map[string]any{"id": float64(42), "name": "order_placed", "total": "9.90"},
		},
	}, got[0])
}

func TestCallWebhookNotFoundCancels(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	tb := setup(t, setupOpts{webhook: statuses(&n, http.StatusNotFound)})

	id := insert[example.CallWebhook](t, tb, event("1", "order_placed", `{"id":1}`), 5)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCancelled, j.State)
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, int32(1), n.Load(), "a 404 is not retried")
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0], `webhook for event 1 answered 404 Not Found: "answer 1 is 404"`)
	require.Empty(t, j.Output)
}

func TestCallWebhookStatuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		state  rivertype.JobState
	}{
		{http.StatusBadRequest, rivertype.JobStateCancelled},
		{http.StatusGone, rivertype.JobStateCancelled},
		{http.StatusUnprocessableEntity, rivertype.JobStateCancelled},
		{http.StatusRequestTimeout, rivertype.JobStateCompleted},
		{http.StatusTooManyRequests, rivertype.JobStateCompleted},
		{http.StatusInternalServerError, rivertype.JobStateCompleted},
		{http.StatusBadGateway, rivertype.JobStateCompleted},
		{http.StatusServiceUnavailable, rivertype.JobStateCompleted},
	} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			tb := setup(t, setupOpts{webhook: statuses(&n, tt.status)})
			id := insert[example.CallWebhook](t, tb, event("7", "order_placed", `{"id":7}`), 3)
			j := waitFinal(t, tb, id)
			require.Equal(t, tt.state, j.State, "errors: %q", j.Errors)
			require.Contains(t, j.Errors[0], fmt.Sprintf("answered %d %s", tt.status, http.StatusText(tt.status)))
			if tt.state == rivertype.JobStateCompleted {
				require.Equal(t, 2, j.Attempt, "retried once")
				require.JSONEq(t, `{"status": 200}`, j.Output)
			} else {
				require.Equal(t, 1, j.Attempt, "not retried")
			}
		})
	}
}

func TestCallWebhookRetriesServerError(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	tb := setup(t, setupOpts{webhook: statuses(&n, http.StatusServiceUnavailable)})

	id := insert[example.CallWebhook](t, tb, event("3", "order_placed", `{"id":3}`), 5)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State)
	require.Equal(t, 2, j.Attempt)
	require.Equal(t, []string{`webhook for event 3 answered 503 Service Unavailable: "answer 1 is 503"`}, j.Errors)
	require.JSONEq(t, `{"status": 200}`, j.Output)
	require.Equal(t, int32(2), n.Load())
}

func TestCallWebhookRetriesTooManyRequests(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	tb := setup(t, setupOpts{webhook: func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}})

	id := insert[example.CallWebhook](t, tb, event("4", "order_placed", `{"id":4}`), 5)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State)
	require.Equal(t, 2, j.Attempt)
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0], "answered 429 Too Many Requests")
	require.Contains(t, j.Errors[0], "Retry-After: 1")
	require.JSONEq(t, `{"status": 202}`, j.Output)
}

func TestCallWebhookTimeoutRetried(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	tb := setup(t, setupOpts{webhookTimeout: 100 * time.Millisecond, webhook: func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hang up
		if n.Add(1) == 1 {
			select { // longer than the timeout
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}})

	id := insert[example.CallWebhook](t, tb, event("5", "order_placed", `{"id":5}`), 5)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State)
	require.Equal(t, 2, j.Attempt)
	require.Len(t, j.Errors, 1)
	require.Contains(t, j.Errors[0], "call webhook for event 5: no response within 100ms")
	require.Contains(t, j.Errors[0], "context deadline exceeded")
}

func TestCallWebhookConnectionRefusedRetried(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/hook"
	require.NoError(t, ln.Close()) // nothing listens there now

	workers := river.NewWorkers()
	require.NoError(t, example.Register(workers, example.Config{Pool: db.Pool, Schema: db.Schema, SMTPAddr: "127.0.0.1:25", WebhookURL: url}))
	client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Schema: db.Schema, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}}, Workers: workers,
		FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond, RetryPolicy: quickRetry{},
		Logger: slog.New(slog.DiscardHandler), TestOnly: true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, client.Stop(context.Background())) })
	tb := &testBundle{db: db, client: client}

	id := insert[example.CallWebhook](t, tb, event("6", "order_placed", `{"id":6}`), 2)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateDiscarded, j.State, "retried until out of attempts")
	require.Equal(t, 2, j.Attempt)
	require.Len(t, j.Errors, 2)
	require.Contains(t, j.Errors[0], "connection refused")
}

func TestSendWelcomeEmail(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	id := insert[example.SendWelcomeEmail](t, tb, event("10", "user_signed_up", `{"id":10,"name":"user_signed_up","email":"Ada Lovelace <ada@example.com>"}`), 3)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State, "errors: %q", j.Errors)
	require.Equal(t, 1, j.Attempt)
	require.JSONEq(t, `{"sent_to": "ada@example.com"}`, j.Output)

	msgs := tb.sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "notified@example.com", msgs[0].From)
	require.Equal(t, []string{"ada@example.com"}, msgs[0].To)
	require.Contains(t, msgs[0].Data, "To: \"Ada Lovelace\" <ada@example.com>\n")
	require.Contains(t, msgs[0].Data, "Subject: Welcome!\n")
	require.Contains(t, msgs[0].Data, "Message-ID: <events.10.send_welcome_email@example.com>\n")
	require.Contains(t, msgs[0].Data, "\nHello,\n", "the event's name is not the user's")
}

func TestSendWelcomeEmailUsesName(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	id := insert[example.SendWelcomeEmail](t, tb, event("11", "user_signed_up", `{"id":11,"name":"Grace","email":"grace@example.com"}`), 3)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State, "errors: %q", j.Errors)
	msgs := tb.sink.Messages()
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Data, "\nHello Grace,\n")
}

func TestSendWelcomeEmailTemporaryFailureRetried(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.sink.FailNext(1, 451, "4.7.1 greylisted, try again later")

	id := insert[example.SendWelcomeEmail](t, tb, event("12", "user_signed_up", `{"email":"ada@example.com"}`), 3)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCompleted, j.State, "errors: %q", j.Errors)
	require.Equal(t, 2, j.Attempt)
	require.Equal(t, []string{`send welcome mail for event 12 to ada@example.com: 451 "4.7.1 greylisted, try again later"`}, j.Errors)
	msgs := tb.sink.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, []string{"ada@example.com"}, msgs[0].To)
}

func TestSendWelcomeEmailPermanentFailureCancels(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.sink.FailNext(1, 550, "5.1.1 no such user")

	id := insert[example.SendWelcomeEmail](t, tb, event("13", "user_signed_up", `{"email":"nobody@example.com"}`), 3)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateCancelled, j.State)
	require.Equal(t, 1, j.Attempt)
	require.Equal(t, []string{`JobCancelError: send welcome mail for event 13 to nobody@example.com: 550 "5.1.1 no such user"`}, j.Errors)
	require.Empty(t, tb.sink.Messages())
}

func TestSendWelcomeEmailBadRowCancels(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, tt := range []struct {
		id, data, err string
	}{
		{"20", `{"id":20,"name":"user_signed_up"}`, "event 20 (user_signed_up) has no email"},
		{"21", `{"email":"  "}`, "event 21 (user_signed_up) has no email"},
		{"22", `{"email":"not an address"}`, `event 22 (user_signed_up): email "not an address" is not a mail address`},
		{"23", `{"email":42}`, "decode event 23 (user_signed_up)"},
	} {
		id := insert[example.SendWelcomeEmail](t, tb, event(tt.id, "user_signed_up", tt.data), 3)
		j := waitFinal(t, tb, id)
		require.Equal(t, rivertype.JobStateCancelled, j.State, tt.data)
		require.Equal(t, 1, j.Attempt)
		require.Len(t, j.Errors, 1)
		require.Contains(t, j.Errors[0], tt.err)
	}
	require.Empty(t, tb.sink.Messages())
}

func TestSendWelcomeEmailServerDownRetried(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	tb := setup(t, setupOpts{smtpAddr: addr})

	id := insert[example.SendWelcomeEmail](t, tb, event("30", "user_signed_up", `{"email":"ada@example.com"}`), 2)
	j := waitFinal(t, tb, id)
	require.Equal(t, rivertype.JobStateDiscarded, j.State, "retried until out of attempts")
	require.Equal(t, 2, j.Attempt)
	require.Len(t, j.Errors, 2)
	require.Contains(t, j.Errors[0], "send welcome mail for event 30 to ada@example.com: dial tcp")
	require.Contains(t, j.Errors[0], "connection refused")
}

func TestWriteAuditOncePerEvent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	row := `{"id": 50, "name": "user_signed_up", "email": "ada@example.com"}`

	first := waitFinal(t, tb, insert[example.WriteAudit](t, tb, event("50", "user_signed_up", row), 3))
	require.Equal(t, rivertype.JobStateCompleted, first.State, "errors: %q", first.Errors)
	require.JSONEq(t, `{"inserted": true}`, first.Output)

	// A second job for the same event (a replay, or a retry after a crash)
	// inserts nothing.
	second := waitFinal(t, tb, insert[example.WriteAudit](t, tb, event("50", "user_signed_up", row), 3))
	require.Equal(t, rivertype.JobStateCompleted, second.State, "errors: %q", second.Errors)
	require.JSONEq(t, `{"inserted": false}`, second.Output)

	// Another event is recorded.
	other := waitFinal(t, tb, insert[example.WriteAudit](t, tb, event("51", "user_signed_up", `{"id": 51}`), 3))
	require.JSONEq(t, `{"inserted": true}`, other.Output)

	var handler, data string
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(), `SELECT handler, data::text FROM `+
		pgx.Identifier{tb.db.Schema, "example_audit"}.Sanitize()+` WHERE event_id = '50' AND event_name = 'user_signed_up'`).Scan(&handler, &data))
	require.Equal(t, "write_audit", handler)
	require.JSONEq(t, row, data)
	require.Equal(t, 2, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+pgx.Identifier{tb.db.Schema, "example_audit"}.Sanitize()))
}

func TestEnsureAuditTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	ctx := context.Background()

	// Twice in the schema, and once in the current schema.
	require.NoError(t, example.EnsureAuditTable(ctx, db.Pool, db.Schema))
	require.NoError(t, example.EnsureAuditTable(ctx, db.Pool, db.Schema))
	conn := testdb.SearchPathConn(t, db)
	require.NoError(t, example.EnsureAuditTable(ctx, conn, ""))
	require.Equal(t, 1, testdb.Count(t, db.Pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'example_audit'", db.Schema))

	err := example.EnsureAuditTable(ctx, db.Pool, db.Schema+"_missing")
	require.ErrorContains(t, err, `create "`+db.Schema+`_missing"."example_audit"`)
}

func TestRegisterValidatesConfig(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})
	valid := example.Config{Pool: db.Pool, SMTPAddr: "127.0.0.1:25", WebhookURL: "https://hooks.example.com/orders"}
	for _, tt := range []struct {
		name   string
		change func(*example.Config)
		err    string
	}{
		{"no pool", func(c *example.Config) { c.Pool = nil }, "example: no database pool for write_audit"},
		{"no SMTP", func(c *example.Config) { c.SMTPAddr = "" }, "example: no SMTP server for send_welcome_email: set --smtp-addr or $EXAMPLE_SMTP_ADDR (host:port)"},
		{"no webhook", func(c *example.Config) { c.WebhookURL = "" }, "example: no webhook URL for call_webhook: set --webhook-url or $EXAMPLE_WEBHOOK_URL"},
		{"relative webhook", func(c *example.Config) { c.WebhookURL = "/hooks" }, `example: webhook URL "/hooks" is not an absolute http or https URL: set --webhook-url or $EXAMPLE_WEBHOOK_URL`},
		{"ftp webhook", func(c *example.Config) { c.WebhookURL = "ftp://example.com/x" }, `example: webhook URL "ftp://example.com/x" is not an absolute http or https URL`},
		{"bad sender", func(c *example.Config) { c.MailFrom = "nobody" }, `example: sender "nobody" is not a mail address: set --mail-from or $EXAMPLE_MAIL_FROM`},
		{"negative timeout", func(c *example.Config) { c.WebhookTimeout = -time.Second }, "example: webhook timeout -1s is negative"},
		{"bad schema", func(c *example.Config) { c.Schema = "a-b" }, `example: Schema "a-b" is not valid`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.change(&cfg)
			err := example.Register(river.NewWorkers(), cfg)
			require.ErrorContains(t, err, tt.err)
		})
	}

	workers := river.NewWorkers()
	require.NoError(t, example.Register(workers, valid))
	require.ErrorContains(t, example.Register(workers, valid), "register handler send_welcome_email")
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	rs := example.Routes()
	require.Equal(t, []routes.Route{
		{Event: "user_signed_up", Kind: "send_welcome_email"},
		{Event: "user_signed_up", Kind: "write_audit"},
		{Event: "order_placed", Kind: "call_webhook"},
		{Event: "order_placed", Kind: "write_audit"},
	}, rs)
	for _, r := range rs {
		require.NoError(t, r.Validate())
	}
}

// TestThroughBridge runs the example handlers on events committed to an
// events table with an email column and dispatched by a real bridge, and
// reads their outcome from notified's history.
func TestThroughBridge(t *testing.T) {
	t.Parallel()
	var hooks atomic.Int32
	tb := setup(t, setupOpts{webhook: func(w http.ResponseWriter, _ *http.Request) {
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}})
	ctx := context.Background()
	table := tb.db.Schema + ".signups"
	testdb.Exec(t, tb.db.Pool, "CREATE TABLE "+table+" (id bigserial PRIMARY KEY, name text, email text)")
	_, err := trigger.Install(ctx, tb.db.Pool, trigger.Options{Schema: tb.db.Schema, Table: table, Channel: tb.db.Channel})
	require.NoError(t, err)
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Ensure(ctx, example.Routes()...))

	b, err := bridge.New(ctx, tb.db.Pool, bridge.Config{Schema: tb.db.Schema, Table: table, Channel: tb.db.Channel,
		PollInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	var signup, order string
	require.NoError(t, tb.db.Pool.QueryRow(ctx, "INSERT INTO "+table+" (name, email) VALUES ('user_signed_up', 'ada@example.com') RETURNING id::text").Scan(&signup))
	require.NoError(t, tb.db.Pool.QueryRow(ctx, "INSERT INTO "+table+" (name) VALUES ('order_placed') RETURNING id::text").Scan(&order))

	store := history.NewStore(tb.db.Pool, tb.db.Schema)
	outputs := func(id string) map[string]string {
		t.Helper()
		out := map[string]string{}
		testdb.WaitFor(t, waitTimeout, func() (bool, string) {
			ev, err := store.Event(ctx, tb.db.Channel, id)
			if err != nil {
				return false, err.Error()
			}
			clear(out)
			var states []string
			for _, j := range ev.Jobs {
				states = append(states, j.Handler+"="+j.State)
				if j.State == history.StateCompleted {
					out[j.Handler] = string(j.Output)
				}
			}
			return len(ev.Jobs) == 2 && len(out) == 2, fmt.Sprintf("event %s is %s, jobs %s", id, ev.Outcome, strings.Join(states, ", "))
		})
		return out
	}

	got := outputs(signup)
	require.JSONEq(t, `{"sent_to": "ada@example.com"}`, got["send_welcome_email"])
	require.JSONEq(t, `{"inserted": true}`, got["write_audit"])
	got = outputs(order)
	require.JSONEq(t, `{"status": 204}`, got["call_webhook"])
	require.JSONEq(t, `{"inserted": true}`, got["write_audit"])

	require.Len(t, tb.sink.Messages(), 1)
	require.Equal(t, int32(1), hooks.Load())
	require.Equal(t, 2, testdb.Count(t, tb.db.Pool, "SELECT count(*) FROM "+tb.db.Schema+".example_audit"))
}
