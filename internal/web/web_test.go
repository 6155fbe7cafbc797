package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/internal/web"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// testBundle is one test's database, with the capture trigger installed on
// its events table, and the bridge configuration for it.
type testBundle struct {
	db  *testdb.DB
	cfg bridge.Config
	log *slog.Logger
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := testdb.New(t)
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{
		Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
	})
	require.NoError(t, err)
	log := testLogger(t)
	return &testBundle{db: db, log: log, cfg: bridge.Config{
		Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
		PollInterval: 200 * time.Millisecond, MissingGrace: 500 * time.Millisecond,
		Logger: log,
	}}
}

// testLogger logs warnings and errors to the test's log, and drops what
// background goroutines log after the test has ended.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

func (tb *testBundle) route(t *testing.T, event, kind string) {
	t.Helper()
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Add(context.Background(), routes.Route{Event: event, Kind: kind}))
}

// startBridge runs a bridge until the test ends.
func (tb *testBundle) startBridge(t *testing.T) {
	t.Helper()
	b, err := bridge.New(context.Background(), tb.db.Pool, tb.cfg)
	require.NoError(t, err)
	bridgetest.Start(t, b)
}

// insertEvent inserts the event with id and name, and returns its row as
// Postgres gives it to JSON.
func (tb *testBundle) insertEvent(t *testing.T, id int64, name string) json.RawMessage {
	t.Helper()
	var row string
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(),
		`WITH e AS (INSERT INTO `+tb.db.Events()+` (id, name, payload) VALUES ($1, $2, jsonb_build_object('total', 12.5, 'items', jsonb_build_array('a', 'b')))
		RETURNING *) SELECT row_to_json(e)::text FROM e`, id, name).Scan(&row))
	return json.RawMessage(row)
}

// waitDispatched waits until the event is recorded as dispatched.
func (tb *testBundle) waitDispatched(t *testing.T, id string) {
	t.Helper()
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		var outcome string
		err := tb.db.Pool.QueryRow(context.Background(), "SELECT outcome FROM "+tb.db.Schema+
			".notified_dispatch WHERE channel = $1 AND event_id = $2", tb.db.Channel, id).Scan(&outcome)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, "event " + id + " not recorded"
		}
		require.NoError(t, err)
		return outcome == history.OutcomeDispatched, "event " + id + " recorded as " + outcome
	})
}

// jobIDs returns the ids of the River jobs of kind.
func (tb *testBundle) jobIDs(t *testing.T, kind string) []int64 {
	t.Helper()
	rows, err := tb.db.Pool.Query(context.Background(), "SELECT id FROM "+tb.db.Schema+".river_job WHERE kind = $1 ORDER BY id", kind)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// newServer builds the web UI for the test's schema and channel. Its River
// UI services stop when the test ends.
func (tb *testBundle) newServer(t *testing.T, user, password string) *web.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := web.New(ctx, web.Options{Pool: tb.db.Pool, Events: tb.cfg, User: user, Password: password, Logger: tb.log})
	require.NoError(t, err)
	return s
}

// serve serves h over HTTP until the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// response is what a request got back.
type response struct {
	code   int
	header http.Header
	body   string
}

// get requests path from ts, with basic auth when user is not empty, and
// does not follow redirects.
func get(t *testing.T, ts *httptest.Server, path, user, password string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Timeout = 30 * time.Second
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{code: resp.StatusCode, header: resp.Header, body: string(body)}
}

// dispatchedEvent is an event that a real bridge dispatched to two routes.
type dispatchedEvent struct {
	id    string
	row   json.RawMessage
	kinds []string
	jobs  map[string]int64 // job id by kind
}

// dispatchEvent routes "order_placed" to two handlers, runs a bridge, and
// inserts event 42.
func (tb *testBundle) dispatchEvent(t *testing.T) dispatchedEvent {
	t.Helper()
	ev := dispatchedEvent{id: "42", kinds: []string{"send_receipt", "update_stock"}, jobs: map[string]int64{}}
	for _, k := range ev.kinds {
		tb.route(t, "order_placed", k)
	}
	tb.startBridge(t)
	ev.row = tb.insertEvent(t, 42, "order_placed")
	tb.waitDispatched(t, ev.id)
	for _, k := range ev.kinds {
		ids := tb.jobIDs(t, k)
		require.Len(t, ids, 1, "jobs of kind %s", k)
		ev.jobs[k] = ids[0]
	}
	return ev
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))

	// Right credentials first: ten wrong ones from an address block it for
	// a while (see TestWrongGuessesAreLimited).
	r := get(t, ts, "/", "admin", "s3cret")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Empty(t, r.header.Get("WWW-Authenticate"))
	require.Contains(t, r.body, tb.db.Channel)

	r = get(t, ts, "/riverui/", "admin", "s3cret")
	require.Equal(t, http.StatusOK, r.code, r.body)

	// Past authentication, an unknown event is not found rather than
	// unauthorized.
	r = get(t, ts, "/api/events/X", "admin", "s3cret")
	require.Equal(t, http.StatusNotFound, r.code, r.body)

	for _, path := range []string{"/", "/riverui/", "/api/events/X", "/events/X", "/api/status"} {
		t.Run(strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			r := get(t, ts, path, "", "")
			require.Equal(t, http.StatusUnauthorized, r.code, "no credentials: %s", r.body)
			require.Equal(t, `Basic realm="notified", charset="UTF-8"`, r.header.Get("WWW-Authenticate"))
			require.Contains(t, r.body, "NOTIFIED_UI_USER")

			r = get(t, ts, path, "admin", "wrong")
			require.Equal(t, http.StatusUnauthorized, r.code, "wrong password: %s", r.body)
			require.NotEmpty(t, r.header.Get("WWW-Authenticate"))

			r = get(t, ts, path, "someone", "s3cret")
			require.Equal(t, http.StatusUnauthorized, r.code, "wrong user: %s", r.body)
		})
	}
}

func TestNoAuthWhenUnset(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ts := serve(t, tb.newServer(t, "", ""))

	for _, path := range []string{"/", "/riverui/", "/api/status"} {
		r := get(t, ts, path, "", "")
		require.Equal(t, http.StatusOK, r.code, "%s: %s", path, r.body)
		require.Empty(t, r.header.Get("WWW-Authenticate"), path)
	}
}

func TestOnlyOneCredential(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	for _, c := range []struct{ name, user, password string }{
		{"user only", "admin", ""},
		{"password only", "", "s3cret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := web.New(t.Context(), web.Options{Pool: db.Pool, Events: bridge.Config{Schema: db.Schema},
				User: c.user, Password: c.password})
			require.Error(t, err)
			require.Nil(t, s)
			require.EqualError(t, err, "web UI: set both User and Password, or neither")
		})
	}
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:8080", true},
		{"localhost:8080", true},
		{"[::1]:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"10.1.2.3:8080", false},
	} {
		t.Run(c.addr, func(t *testing.T) {
			t.Parallel()
			err := web.CheckAddr(c.addr, false, false)
			if c.loopback {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, web.ErrInsecure)
				require.Contains(t, err.Error(), "NOTIFIED_UI_USER")
				require.Contains(t, err.Error(), "--insecure-ui")
				require.Contains(t, err.Error(), c.addr)
			}
			require.NoError(t, web.CheckAddr(c.addr, true, false), "with credentials")
			require.NoError(t, web.CheckAddr(c.addr, false, true), "with --insecure-ui")
		})
	}

	t.Run("nonsense", func(t *testing.T) {
		t.Parallel()
		for _, auth := range []bool{false, true} {
			err := web.CheckAddr("nonsense", auth, auth)
			require.Error(t, err)
			require.NotErrorIs(t, err, web.ErrInsecure)
			require.Contains(t, err.Error(), `--http-addr "nonsense"`)
		}
	})
}

func TestEventJSON(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ev := tb.dispatchEvent(t)
	ts := serve(t, tb.newServer(t, "", ""))

	for _, id := range []string{"42", "0042"} {
		t.Run(id, func(t *testing.T) {
			r := get(t, ts, "/api/events/"+id, "", "")
			require.Equal(t, http.StatusOK, r.code, r.body)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			var got history.Event
			require.NoError(t, json.Unmarshal([]byte(r.body), &got), r.body)

			require.Equal(t, tb.db.Channel, got.Channel)
			require.Equal(t, "42", got.ID, "the canonical id")
			require.NotNil(t, got.Name)
			require.Equal(t, "order_placed", *got.Name)
			require.Equal(t, history.OutcomeDispatched, got.Outcome)
			require.Nil(t, got.Reason)
			require.NotNil(t, got.DispatchedAt)

			routed := make([]string, 0, len(got.Routes))
			for _, rt := range got.Routes {
				routed = append(routed, rt.Handler)
			}
			require.ElementsMatch(t, ev.kinds, routed)

			require.Len(t, got.Jobs, 2)
			for _, j := range got.Jobs {
				require.Contains(t, ev.kinds, j.Handler)
				require.Equal(t, ev.jobs[j.Handler], j.ID, "job id of %s", j.Handler)
				require.Equal(t, "42", j.EventID)
				require.Equal(t, "order_placed", j.EventName)
				require.Equal(t, "available", j.State)
				require.Nil(t, j.ReplayID)
			}
			require.NotEqual(t, got.Jobs[0].Handler, got.Jobs[1].Handler)

			require.JSONEq(t, string(ev.row), string(got.Data))
			var data struct {
				ID      int64          `json:"id"`
				Name    string         `json:"name"`
				Payload map[string]any `json:"payload"`
			}
			require.NoError(t, json.Unmarshal(got.Data, &data))
			require.Equal(t, int64(42), data.ID)
			require.Equal(t, "order_placed", data.Name)
			require.Equal(t, map[string]any{"total": 12.5, "items": []any{"a", "b"}}, data.Payload)
		})
	}

	requireNotFound := func(t *testing.T, path string) {
		t.Helper()
		r := get(t, ts, path, "", "")
		require.Equal(t, http.StatusNotFound, r.code, r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var body map[string]string
		require.NoError(t, json.Unmarshal([]byte(r.body), &body), r.body)
		require.Len(t, body, 1, r.body)
		require.Contains(t, body["error"], "event not found")
	}
	t.Run("unknown id", func(t *testing.T) { requireNotFound(t, "/api/events/43") })
	t.Run("not an id", func(t *testing.T) { requireNotFound(t, "/api/events/nope") })
	t.Run("other channel", func(t *testing.T) { requireNotFound(t, "/api/events/42?channel=other_"+tb.db.Channel) })
	t.Run("own channel", func(t *testing.T) {
		r := get(t, ts, "/api/events/42?channel="+tb.db.Channel, "", "")
		require.Equal(t, http.StatusOK, r.code, r.body)
	})
}

func TestEventPage(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ev := tb.dispatchEvent(t)
	ts := serve(t, tb.newServer(t, "", ""))

	r := get(t, ts, "/events/42", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	// The id in the heading's own size, the name and outcome below it.
	require.Contains(t, r.body, "<h1>Event <code>42</code></h1>")
	require.Contains(t, r.body, "h1 code{font-size:inherit;")
	require.Contains(t, r.body, `<p class="sub"><span class="name">order_placed</span> · <span class="badge b-dispatched">dispatched</span>`)
	require.Contains(t, r.body, `<table id="jobs">`)
	for _, k := range ev.kinds {
		require.Contains(t, r.body, `<td><span class="name">`+k+`</span></td>`, "handler %s", k)
		require.Contains(t, r.body, fmt.Sprintf(`<a href="/riverui/jobs/%d">%d</a>`, ev.jobs[k], ev.jobs[k]), "link to the job of %s", k)
	}
	require.Equal(t, 2, strings.Count(r.body, `<td><span class="badge b-available">available</span></td>`), r.body)

	// The row changed after dispatch: shown as the current row, while each
	// job's column keeps what its handler received.
	_, err := tb.db.Pool.Exec(context.Background(),
		"UPDATE "+pgx.Identifier{tb.db.Schema, "events"}.Sanitize()+` SET payload = '{"total": 99.5}' WHERE id = 42`)
	require.NoError(t, err)
	r = get(t, ts, "/events/42", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, "<h2>Current row</h2>")
	current := r.body[strings.Index(r.body, "<h2>Current row</h2>"):]
	require.Contains(t, current, "99.5")
	require.NotContains(t, current, "12.5")
	jobs := r.body[strings.Index(r.body, `<table id="jobs">`):strings.Index(r.body, "<h2>Current row</h2>")]
	require.Equal(t, 2, strings.Count(jobs, "<details><summary>row</summary>"), jobs)
	require.Equal(t, 2, strings.Count(jobs, "12.5"), jobs)
	require.NotContains(t, jobs, "99.5")

	r = get(t, ts, "/events/0042", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, "<h1>Event <code>42</code></h1>")

	r = get(t, ts, "/events/43", "", "")
	require.Equal(t, http.StatusNotFound, r.code, r.body)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	require.Contains(t, r.body, "<h1>404 Not Found</h1>")
	require.Contains(t, r.body, "event not found")
	require.NotContains(t, r.body, `<table id="jobs">`)

	r = get(t, ts, "/?event=42", "", "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/events/42", r.header.Get("Location"))

	r = get(t, ts, "/?event=+0042+", "", "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/events/0042", r.header.Get("Location"))
}

func TestStatusJSON(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	// No bridge runs: the captured events wait in the outbox.
	for id := int64(1); id <= 3; id++ {
		tb.insertEvent(t, id, "order_placed")
	}
	ts := serve(t, tb.newServer(t, "", ""))

	r := get(t, ts, "/api/status", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var st history.Status
	require.NoError(t, json.Unmarshal([]byte(r.body), &st), r.body)
	require.Equal(t, tb.db.Channel, st.Channel)
	require.Equal(t, int64(3), st.Backlog)
	require.NotNil(t, st.OldestPending)

	other := "other_" + tb.db.Channel
	r = get(t, ts, "/api/status?channel="+other, "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	st = history.Status{}
	require.NoError(t, json.Unmarshal([]byte(r.body), &st), r.body)
	require.Equal(t, other, st.Channel)
	require.Equal(t, int64(0), st.Backlog)
	require.Nil(t, st.OldestPending)
}

func TestServeGracefulShutdown(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	s := tb.newServer(t, "", "")
	started, release := make(chan struct{}), make(chan struct{})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	}))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() {
		served <- web.Serve(ctx, "127.0.0.1:0", s, tb.log, func(a net.Addr) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		tcp, ok := a.(*net.TCPAddr)
		require.True(t, ok, "address %v is %T", a, a)
		require.True(t, tcp.IP.IsLoopback(), "address %v", a)
		require.NotZero(t, tcp.Port)
		base = "http://" + a.String()
	case err := <-served:
		t.Fatalf("Serve returned before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not report its address within 10s")
	}

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/api/status")
	require.NoError(t, err)
	var st history.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, tb.db.Channel, st.Channel)

	// A request in flight when ctx is cancelled is answered before Serve
	// returns.
	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{body: string(b), err: err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach the handler within 10s")
	}
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned while a request was in flight: %v", err)
	default:
	}
	close(release)
	select {
	case res := <-slow:
		require.NoError(t, res.err)
		require.Equal(t, "done", res.body)
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request got no answer within 10s")
	}
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of ctx being cancelled")
	}

	_, err = client.Get(base + "/api/status")
	require.Error(t, err, "the listener is closed after Serve returns")
}
