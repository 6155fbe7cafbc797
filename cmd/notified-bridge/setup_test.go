package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

func TestSetup(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	args := []string{"setup", "--table", db.Events(), "--channel", db.Channel,
		"--route", "user_signed_up=send_welcome_email", "--route", "order_placed=call_webhook"}
	out := mustRun(t, db, args...)
	require.Contains(t, out, "schema "+db.Schema+" migrated")
	require.Contains(t, out, "installed on "+db.Events())
	require.Contains(t, out, "route user_signed_up -> send_welcome_email (added)\nroute order_placed -> call_webhook (added)\n")
	require.Equal(t, 2, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_route")))

	// Idempotent: running it again changes nothing and succeeds, and a
	// route's options set since are kept.
	mustRun(t, db, "routes", "add", "--queue", "hooks", "order_placed", "call_webhook")
	var res struct {
		Migrate struct{ Versions []int }
		Trigger string
		Routes  []struct{ Event, Kind string }
	}
	out = mustRun(t, db, append(args, "--json")...)
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Empty(t, res.Migrate.Versions)
	require.Regexp(t, `^notified_capture_`, res.Trigger)
	require.Len(t, res.Routes, 2)
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_route")+" WHERE kind = 'call_webhook' AND queue = 'hooks'"))
	out = mustRun(t, db, args...)
	require.Contains(t, out, "route order_placed -> call_webhook (exists, left as it is)\n")

	// The trigger works: an insert lands in the outbox.
	insertEvent(t, db, "user_signed_up", "{}")
	require.Equal(t, 1, count(t, db, "SELECT count(*) FROM "+tbl(db, "notified_outbox")))
}

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	// An invalid route is refused before anything is changed.
	_, stderr, code := run(t, db, "setup", "--table", db.Events(), "--route", "e="+strings.Repeat("k", 128))
	requireUserError(t, stderr, code, "handler kind is longer than 127 characters")
	require.Zero(t, count(t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'notified_route'", db.Schema),
		"setup migrated before refusing the route")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"setup", "--route", "nokind"}, `--route "nokind" is not EVENT=KIND, e.g. --route user_signed_up=send_welcome_email`},
		{[]string{"setup", "--route", "=k"}, `--route "=k" is not EVENT=KIND`},
		{[]string{"setup", "extra"}, `setup: unexpected argument "extra": routes go in --route EVENT=KIND`},
		{[]string{"setup", "--table", db.Schema + ".nope"}, `events table not found: "` + db.Schema + `.nope" does not exist`},
	} {
		_, stderr, code := run(t, db, c.args...)
		requireUserError(t, stderr, code, c.want)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)

	// Nothing listens: exit 1 with the address.
	_, stderr, code := runEnv(t, envWithURL(db.URL), "healthcheck", "--http-addr", "127.0.0.1:1")
	requireUserError(t, stderr, code, "healthcheck: http://127.0.0.1:1/readyz:")
	_, stderr, code = runEnv(t, envWithURL(db.URL), "healthcheck")
	requireUserError(t, stderr, code, "healthcheck: no address: set --http-addr or NOTIFIED_HTTP_ADDR")

	// A bridge on every interface with --ui=false serves only the ops
	// endpoints, so it needs no credentials.
	p := startBridge(t, db, "--http-addr", "0.0.0.0:0", "--ui=false")
	var addr string
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		addr = logged(p, "http server listening", "addr")
		return addr != "", "no address logged"
	})
	port := addr[strings.LastIndex(addr, ":"):]
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		stdout, stderr, code := runEnv(t, envWithURL(db.URL), "healthcheck", "--http-addr", port)
		return code == 0 && stdout == "ok\n", stderr
	})
	// NOTIFIED_HTTP_ADDR is read as run reads it.
	stdout, _, code := runEnv(t, append(envWithURL(db.URL), "NOTIFIED_HTTP_ADDR="+port), "healthcheck", "--path", "/healthz")
	require.Equal(t, 0, code)
	require.Equal(t, "ok\n", stdout)

	resp, err := http.Get("http://127.0.0.1" + port + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get("http://127.0.0.1" + port + "/riverui/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "--ui=false serves no UI")
	require.Equal(t, exitTerminate, p.stop(t))
}
