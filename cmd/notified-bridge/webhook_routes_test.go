package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/webhook"
)

// TestRoutesWebhook: routes add --webhook stores a webhook route (kind
// notified_webhook, queue webhook), several URLs of one event are separate
// routes, and routes remove --webhook removes one; bad URLs and secret
// names are one-line errors.
func TestRoutesWebhook(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})

	out := mustRun(t, db, "routes", "add", "--webhook", "https://app.internal/hooks/welcome", "--secret-env", "NOTIFIED_WEBHOOK_SECRET_WELCOME", "user_signed_up")
	require.Equal(t, "route added: user_signed_up -> webhook https://app.internal/hooks/welcome (queue webhook, priority 1, max attempts 25, signed with $NOTIFIED_WEBHOOK_SECRET_WELCOME)\n"+
		"its jobs are delivered by `notified-bridge work` (queue webhook)\n", out)
	out = mustRun(t, db, "routes", "add", "--webhook", "http://crm.internal/signup", "user_signed_up")
	require.Contains(t, out, "warning: requests are not signed")
	mustRun(t, db, "routes", "add", "user_signed_up", "send_welcome_email")

	var rs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "routes", "list", "--json")), &rs))
	require.Len(t, rs, 3)
	require.Equal(t, "notified_webhook", rs[0]["kind"])
	require.Equal(t, "http://crm.internal/signup", rs[0]["webhook"])
	require.Equal(t, "webhook", rs[0]["queue"])
	require.Equal(t, "https://app.internal/hooks/welcome", rs[1]["webhook"])
	require.Equal(t, "NOTIFIED_WEBHOOK_SECRET_WELCOME", rs[1]["secret_env"])
	require.Equal(t, "send_welcome_email", rs[2]["kind"])
	table := mustRun(t, db, "routes", "list")
	require.Contains(t, table, "webhook https://app.internal/hooks/welcome")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook", "ftp://x/y", "e"}, "scheme"},
		{[]string{"--webhook", "https://user:hunter2@x/y", "e"}, "credentials"},
		{[]string{"--webhook", " ", "e"}, "--webhook is empty"},
		{[]string{"--webhook", "https://x/y", "--secret-env", "DATABASE_URL", "e"}, `secret variable "DATABASE_URL" must be named NOTIFIED_WEBHOOK_SECRET`},
		{[]string{"--secret-env", "NOTIFIED_WEBHOOK_SECRET_X", "e", "k"}, "--secret-env applies to webhook routes"},
		{[]string{"e", "notified_webhook"}, "the kind notified_webhook is for webhook routes"},
		{[]string{"--webhook", "https://x/y", "e", "k"}, `unexpected argument "k"`},
	} {
		stdout, stderr, code := run(t, db, append([]string{"routes", "add"}, tc.args...)...)
		requireUserError(t, stderr, code, tc.want)
		require.NotContains(t, stderr, "hunter2", "a password in a URL is never echoed")
		require.Empty(t, stdout)
	}

	mustRun(t, db, "routes", "remove", "--webhook", "http://crm.internal/signup", "user_signed_up")
	_, stderr, code := run(t, db, "routes", "remove", "--webhook", "http://crm.internal/signup", "user_signed_up")
	requireUserError(t, stderr, code, "no route user_signed_up -> webhook http://crm.internal/signup")
	require.Len(t, strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n"), 3, "the other two routes are left")
}

// TestWorkRefusesBadFetchSettings: River fetches at least every second and
// at most every millisecond, and ordered completions are a count; a value
// outside that is a one-line error naming the flag and its variable.
func TestWorkRefusesBadFetchSettings(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	for _, v := range []string{"0s", "-5ms", "500us", "2s"} {
		stdout, stderr, code := run(t, db, "work", "--fetch-cooldown", v)
		requireUserError(t, stderr, code, "--fetch-cooldown / NOTIFIED_WORK_FETCH_COOLDOWN is ")
		require.Contains(t, stderr, "give a duration from 1ms to 1s", v)
		require.Empty(t, stdout)
	}
	stdout, stderr, code := run(t, db, "work", "--ordered-completions", "-1")
	requireUserError(t, stderr, code, "--ordered-completions / NOTIFIED_WORK_ORDERED_COMPLETIONS is -1: give a number of deliveries a second, or 0 for none")
	require.Empty(t, stdout)
}

// TestWorkDeliversWebhooks: with a webhook route, `run` and `work` deliver
// an event to the receiver, signed with the secret of the variable the
// route names; history shows the delivery; SIGTERM stops the worker
// cleanly. A private target is refused unless allowed.
func TestWorkDeliversWebhooks(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	got := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
		_, _ = io.WriteString(w, `{"welcomed": true}`)
	}))
	t.Cleanup(srv.Close)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "--webhook", srv.URL+"/hooks/welcome", "--secret-env", "NOTIFIED_WEBHOOK_SECRET_WELCOME", "user_signed_up")
	startBridge(t, db)

	// Refused by default: the receiver is on loopback.
	_, stderr, code := run(t, db, "work", "--webhook-allow-cidr", "10.0.0.0/33")
	requireUserError(t, stderr, code, `--webhook-allow-cidr / NOTIFIED_WEBHOOK_ALLOW_CIDRS: "10.0.0.0/33" is not an address range`)
	env := append(envWithURL(db.URL), "NOTIFIED_WEBHOOK_SECRET_WELCOME="+secret)
	w := startUntil(t, binary, env, []string{"--schema", db.Schema, "work", "--webhook-allow-cidr", "127.0.0.1/32", "--fetch-cooldown", "10ms"}, "worker running")
	require.Contains(t, w.stderr.String(), `"fetch_cooldown":"10ms"`)
	id := insertEvent(t, db, "user_signed_up", `{"email": "a@b.c"}`)
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing")
	}
	body := <-bodies
	require.NoError(t, webhook.Verify(secret, r.Header, body, time.Minute))
	require.Contains(t, string(body), `"event_name":"user_signed_up"`)
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		n := count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")+" WHERE state = 'completed'")
		return n == 1, "completed jobs: " + strconv.Itoa(n)
	})
	hist := mustRun(t, db, "history", "--channel", db.Channel, "--table", db.Events(), strconv.FormatInt(id, 10))
	require.Contains(t, hist, "webhook "+srv.URL+"/hooks/welcome")
	require.Contains(t, hist, `{"url": "`+srv.URL+`/hooks/welcome"`)
	require.Equal(t, exitTerminate, w.stop(t))
}
