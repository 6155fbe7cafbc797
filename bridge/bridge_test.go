package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/publish"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// testBundle is one test's database, routes and bridge configuration,
// with the bridge tests' own helpers.
type testBundle struct{ *bridgetest.Bundle }

type setupOpts = bridgetest.Options

func setup(t testing.TB, opts ...setupOpts) *testBundle {
	t.Helper()
	var o setupOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	return &testBundle{bridgetest.Setup(t, o)}
}

func testLogger(t testing.TB) *slog.Logger { return bridgetest.Logger(t) }

// startLogged runs a bridge with the bundle's configuration until the test
// ends, logging at info and above, as JSON, into the buffer it returns.
func (tb *testBundle) startLogged(t testing.TB) (*bridge.Bridge, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := tb.Config
	cfg.Logger = jsonLogger(logs)
	return tb.Start(t, nil, cfg), logs
}

// startWatched runs a bridge until the test ends, and returns it with the
// signals it sends as it works.
func (tb *testBundle) startWatched(t testing.TB, cfg bridge.Config) (*bridge.Bridge, *bridge.Signals) {
	t.Helper()
	b, err := bridge.New(context.Background(), tb.DB.Pool, cfg)
	require.NoError(t, err)
	sigs := bridge.WatchSignals(b)
	bridgetest.Start(t, b)
	return b, sigs
}

// total adds up count of every value.
func total[T any](values []T, count func(T) int) int {
	n := 0
	for _, v := range values {
		n += count(v)
	}
	return n
}

// waitIgnored waits until the bridge has counted n notifications as ignored
// in all, and fails if it counted more.
func waitIgnored(t testing.TB, sigs *bridge.Signals, n int) {
	t.Helper()
	count := func(i bridge.Ignored) int { return i.Notifications }
	all := sigs.Ignored.WaitUntil(t, fmt.Sprintf("%d notifications ignored", n), func(all []bridge.Ignored) bool {
		return total(all, count) >= n
	})
	require.Equal(t, n, total(all, count), "notifications ignored: %v", all)
}

// waitNotificationsHandled waits until the bridge's drainer is done with n
// notified payloads in all: each was dropped as just recorded, or looked up
// in the events table and, if that put it in the outbox, dispatched. It
// returns how many ids were put in the outbox.
func waitNotificationsHandled(t testing.TB, sigs *bridge.Signals, n int) int {
	t.Helper()
	all := sigs.Drained.WaitUntil(t, fmt.Sprintf("%d notifications handled", n), func(all []bridge.DrainRound) bool {
		return total(all, func(r bridge.DrainRound) int { return r.Notifications }) >= n
	})
	return total(all, func(r bridge.DrainRound) int { return r.AddedToOutbox })
}

// waitAccounted waits until the bridge's committed batches have recorded n
// events in all, each of them logged and counted.
func waitAccounted(t testing.TB, sigs *bridge.Signals, n int) {
	t.Helper()
	sigs.Committed.WaitUntil(t, fmt.Sprintf("%d events recorded", n), func(all []int) bool {
		return total(all, func(n int) int { return n }) >= n
	})
}

func (tb *testBundle) notify(t testing.TB, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		testdb.Exec(t, tb.DB.Pool, "SELECT pg_notify($1, $2)", tb.DB.Channel, p)
	}
}

// jobsByEvent returns the sorted kinds of the jobs of each event id.
func (tb *testBundle) jobsByEvent(t testing.TB) map[string][]string {
	t.Helper()
	rows, err := tb.DB.Pool.Query(context.Background(),
		"SELECT args->>'event_id', kind FROM "+tb.DB.Schema+".river_job ORDER BY 1, 2")
	require.NoError(t, err)
	out := map[string][]string{}
	for rows.Next() {
		var id, kind string
		require.NoError(t, rows.Scan(&id, &kind))
		out[id] = append(out[id], kind)
	}
	require.NoError(t, rows.Err())
	return out
}

type outcome = bridgetest.Outcome

// requireExactlyOnce asserts that every event id in want has exactly the
// given kinds of jobs, and no other event has any.
func (tb *testBundle) requireExactlyOnce(t testing.TB, want map[string][]string) {
	t.Helper()
	got := tb.jobsByEvent(t)
	for id, kinds := range want {
		sorted := append([]string(nil), kinds...)
		sort.Strings(sorted)
		require.Equal(t, sorted, got[id], "jobs of event %s", id)
	}
	for id := range got {
		_, ok := want[id]
		require.True(t, ok, "unexpected jobs for event %s: %v", id, got[id])
	}
}

func TestDispatchEndToEnd(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	store := routes.NewStore(tb.DB.Pool, tb.DB.Schema)
	require.NoError(t, store.Add(ctx, routes.Route{Event: "user_signed_up", Kind: "send_welcome", Queue: "mail", Priority: 2, MaxAttempts: 5}))
	require.NoError(t, store.Add(ctx, routes.Route{Event: "user_signed_up", Kind: "audit"}))
	tb.Start(t, nil, tb.Config)

	ids := tb.InsertEvents(t, "user_signed_up")
	tb.WaitRecorded(t, 1)
	tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"audit", "send_welcome"}})

	var (
		kind, queue, channel string
		priority, maxAtt     int
		args, meta           []byte
	)
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, "SELECT kind, queue, priority, max_attempts, args, metadata FROM "+tb.DB.Schema+
		".river_job WHERE kind = 'send_welcome'").Scan(&kind, &queue, &priority, &maxAtt, &args, &meta))
	require.Equal(t, "mail", queue)
	require.Equal(t, 2, priority)
	require.Equal(t, 5, maxAtt)
	var payload jobs.Payload
	require.NoError(t, json.Unmarshal(args, &payload))
	require.Equal(t, ids[0], payload.EventID)
	require.Equal(t, "user_signed_up", payload.EventName)
	require.Equal(t, tb.DB.Channel, payload.Channel)
	var row map[string]any
	require.NoError(t, json.Unmarshal(payload.Data, &row))
	require.Equal(t, "user_signed_up", row["name"])
	require.Equal(t, map[string]any{"n": "user_signed_up"}, row["payload"])
	require.Contains(t, row, "created_at")
	channel = tb.DB.Channel
	require.JSONEq(t, fmt.Sprintf(`{"notified": {"event_id": %q, "event_name": "user_signed_up", "channel": %q}}`, ids[0], channel), string(meta))

	// A River worker runs the handlers with the decoded event.
	workers := river.NewWorkers()
	got := make(chan jobs.Event, 2)
	handler := func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		got <- ev
		return jobs.Success(map[string]string{"ok": ev.ID}), nil
	}
	require.NoError(t, jobs.Handle[sendWelcome](workers, handler))
	require.NoError(t, jobs.Handle[audit](workers, handler))
	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{
		Schema: tb.DB.Schema, Workers: workers, TestOnly: true,
		Queues:            map[string]river.QueueConfig{"mail": {MaxWorkers: 2}, river.QueueDefault: {MaxWorkers: 2}},
		FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 10 * time.Millisecond,
		Logger: testLogger(t),
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { require.NoError(t, client.Stop(context.Background())) })
	for range 2 {
		select {
		case ev := <-got:
			require.Equal(t, ids[0], ev.ID)
			require.Equal(t, "user_signed_up", ev.Name)
			var decoded struct {
				Name    string         `json:"name"`
				Payload map[string]any `json:"payload"`
			}
			require.NoError(t, ev.Decode(&decoded))
			require.Equal(t, "user_signed_up", decoded.Name)
		case <-time.After(15 * time.Second):
			t.Fatal("handlers did not run")
		}
	}
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".river_job WHERE state = 'completed' AND metadata->'output'->>'ok' = $1", ids[0])
		return n == 2, fmt.Sprintf("%d of 2 jobs completed with output", n)
	})
}

type sendWelcome struct{}

func (sendWelcome) Kind() string { return "send_welcome" }

type audit struct{}

func (audit) Kind() string { return "audit" }

func TestFanOutAndUnrouted(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, k := range []string{"k1", "k2", "k3"} {
		tb.Route(t, "three", k)
	}
	tb.Route(t, "one", "k1")
	tb.Start(t, nil, tb.Config)

	var names []string
	for range 20 {
		names = append(names, "three", "one", "none")
	}
	ids := tb.InsertEvents(t, names...)
	tb.WaitRecorded(t, len(ids))

	want := map[string][]string{}
	for i, id := range ids {
		switch names[i] {
		case "three":
			want[id] = []string{"k1", "k2", "k3"}
		case "one":
			want[id] = []string{"k1"}
		}
	}
	tb.requireExactlyOnce(t, want)
	out := tb.Outcomes(t)
	for i, id := range ids {
		if names[i] == "none" {
			require.Equal(t, outcome{Outcome: "unrouted", Reason: `no route for event name "none"`, Name: "none"}, out[id])
		} else {
			require.Equal(t, "dispatched", out[id].Outcome)
		}
	}
}

// TestHandSentBadPayloadsAreIgnoredAndNeighboursDispatched: payloads that
// name no event, sent by hand between good events, are counted and logged
// but write nothing to notified's tables; the good events are dispatched.
func TestHandSentBadPayloadsAreIgnoredAndNeighboursDispatched(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "ok", "k")
	logs := &syncBuffer{}
	cfg := tb.Config
	cfg.Logger = jsonLogger(logs)
	_, sigs := tb.startWatched(t, cfg)

	payloads := []string{"abc", "", " ", "1.5", "99999999999999999999", "1; drop table events", "1' or '1'='1",
		"-5", strings.Repeat("7", 7999)}
	// Good events go in between the bad ones.
	ids := tb.InsertEvents(t, "ok", "ok")
	tb.notify(t, payloads...)
	more := tb.InsertEvents(t, "ok")
	ids = append(ids, more...)
	tb.WaitRecorded(t, len(ids))
	waitIgnored(t, sigs, len(payloads))

	want := map[string][]string{}
	recorded := map[string]outcome{}
	for _, id := range ids {
		want[id] = []string{"k"}
		recorded[id] = outcome{Outcome: "dispatched", Name: "ok"}
	}
	require.Equal(t, recorded, tb.Outcomes(t), "only the good events are recorded")
	tb.requireExactlyOnce(t, want)
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox"))
	// The SQL-looking payloads did nothing.
	require.Equal(t, 3, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Events()))
	require.Contains(t, logs.String(), `"msg":"notifications ignored: they name no event of the events table"`)
	require.Contains(t, logs.String(), `"reason":"not_an_id"`)
	requireNoErrorLogs(t, logs)
}

func TestBadOutboxRowsDoNotAffectTheirBatch(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "ok", "k")
	ids := tb.InsertEvents(t, "ok", "ok", "ok")
	// Bad ids written straight into the outbox land in the same batch as the
	// good events.
	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+tb.DB.Schema+".notified_outbox (channel, event_id, created_at) VALUES ($1, 'x', now() - interval '1 hour'), ($1, '42', now() - interval '1 hour')", tb.DB.Channel)
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	n, err := bridge.DispatchOnce(context.Background(), b)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	out := tb.Outcomes(t)
	require.Equal(t, "rejected", out["x"].Outcome)
	require.Equal(t, "missing", out["42"].Outcome)
	tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"k"}, ids[1]: {"k"}, ids[2]: {"k"}})
	st := b.Stats()
	require.Equal(t, int64(3), st.Dispatched)
	require.Equal(t, int64(1), st.Rejected)
	require.Equal(t, int64(1), st.Missing)
}

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

func TestOutcomesAreLogged(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var logs syncBuffer
	cfg := tb.Config
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tb.Start(t, nil, cfg)
	tb.InsertEvents(t, "nobody_listens", "nobody_listens")
	tb.Outbox(t, "abc")
	tb.WaitRecorded(t, 3)
	testdb.WaitFor(t, 5*time.Second, func() (bool, string) {
		out := logs.String()
		return strings.Contains(out, `"msg":"events unrouted: no route for their name","channel":"`+tb.DB.Channel+`","event_name":"nobody_listens","events":2`) &&
			strings.Contains(out, `"msg":"event rejected","channel":"`+tb.DB.Channel+`","event_id":"abc","reason":"payload \"abc\" is not a valid bigint id"`) &&
			strings.Contains(out, `"msg":"batch dispatched"`), out
	})
}

func TestNullNameIsRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "ok", "k")
	tb.Start(t, nil, tb.Config)
	var id string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), "INSERT INTO "+tb.DB.Events()+" (name) VALUES (NULL) RETURNING id::text").Scan(&id))
	ok := tb.InsertEvents(t, "ok")
	tb.WaitRecorded(t, 2)
	require.Equal(t, outcome{Outcome: "rejected", Reason: "name column name is NULL"}, tb.Outcomes(t)[id])
	tb.requireExactlyOnce(t, map[string][]string{ok[0]: {"k"}})
}

func TestNotifyBeforeCommitWaitsForTheRow(t *testing.T) {
	t.Parallel()
	// No trigger: the producer sends the NOTIFY itself, before its row is
	// committed.
	tb := setup(t, setupOpts{NoTrigger: true})
	tb.Route(t, "late", "k")
	cfg := tb.Config
	cfg.MissingGrace = 5 * time.Second
	cfg.PollInterval = time.Hour // retries must not wait for a poll
	b := tb.Start(t, nil, cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	waiting := func() float64 {
		n, ok := metricValue(t, reg, "notified_notifications_waiting", map[string]string{"channel": tb.DB.Channel})
		require.True(t, ok)
		return n
	}

	ctx := context.Background()
	tx, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var id string
	require.NoError(t, tx.QueryRow(ctx, "INSERT INTO "+tb.DB.Events()+" (name) VALUES ('late') RETURNING id::text").Scan(&id))
	tb.notify(t, id)
	// The bridge tried it, found no row, and waits for one.
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := waiting()
		return n == 1, fmt.Sprintf("%g notified ids waiting for their row", n)
	})
	require.Zero(t, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox"),
		"an id with no row is not written to the outbox")
	require.NoError(t, tx.Commit(ctx))
	tb.WaitRecorded(t, 1)
	require.Zero(t, waiting(), "the id found its row")
	require.Equal(t, "dispatched", tb.Outcomes(t)[id].Outcome)
	tb.requireExactlyOnce(t, map[string][]string{id: {"k"}})
}

func TestSchemaQualifiedTableWithCustomColumns(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	app := db.Schema + "_app"
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+app)
	t.Cleanup(func() { testdb.Exec(t, db.Pool, "DROP SCHEMA "+app+" CASCADE") })
	testdb.Exec(t, db.Pool, "CREATE TABLE "+app+`.outbox_events ("EventId" integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Kind" text, body text)`)
	table := app + ".outbox_events"
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: table, Channel: db.Channel, IDColumn: "EventId"})
	require.NoError(t, err)
	tb := &testBundle{&bridgetest.Bundle{DB: db, Config: bridge.Config{Schema: db.Schema, Table: table, IDColumn: "EventId", NameColumn: "Kind",
		Channel: db.Channel, PollInterval: 200 * time.Millisecond, Logger: testLogger(t)}}}
	tb.Route(t, "created", "k")
	tb.Start(t, nil, tb.Config)

	var id string
	require.NoError(t, db.Pool.QueryRow(context.Background(), "INSERT INTO "+table+` ("Kind", body) VALUES ('created', 'hello') RETURNING "EventId"::text`).Scan(&id))
	tb.WaitRecorded(t, 1)
	tb.requireExactlyOnce(t, map[string][]string{id: {"k"}})
	var data string
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT args->>'data' FROM "+db.Schema+".river_job").Scan(&data))
	require.JSONEq(t, fmt.Sprintf(`{"EventId": %s, "Kind": "created", "body": "hello"}`, id), data)
}

func TestUUIDAndTextIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, idType, idDefault, notifyForm string }{
		{"uuid", "uuid", "gen_random_uuid()", "upper"},
		{"text", "text", "'ev-' || gen_random_uuid()", "same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := testdb.New(t, testdb.Options{NoEventsTable: true})
			table := db.Schema + ".events"
			testdb.Exec(t, db.Pool, "CREATE TABLE "+table+" (id "+tc.idType+" PRIMARY KEY DEFAULT "+tc.idDefault+", name text, payload jsonb)")
			_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: table, Channel: db.Channel})
			require.NoError(t, err)
			tb := &testBundle{&bridgetest.Bundle{DB: db, Config: bridge.Config{Schema: db.Schema, Table: table, Channel: db.Channel,
				PollInterval: 200 * time.Millisecond, MissingGrace: 300 * time.Millisecond, Logger: testLogger(t)}}}
			tb.Route(t, "e", "k")
			_, sigs := tb.startWatched(t, tb.Config)
			ids := tb.InsertEvents(t, "e", "e")
			tb.WaitRecorded(t, 2)
			// The same ids notified again by hand, in another spelling, get
			// no second job.
			for _, id := range ids {
				if tc.notifyForm == "upper" {
					id = strings.ToUpper(id)
				}
				tb.notify(t, id)
			}
			// The trigger's two notifications and the two by hand: an id
			// any of them put in the outbox would have been dispatched.
			waitNotificationsHandled(t, sigs, 4)
			tb.WaitRecorded(t, 2)
			tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"k"}, ids[1]: {"k"}})
		})
	}
}

func TestEventsCommittedWhileStoppedAreDispatched(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	names := make([]string, 2500)
	for i := range names {
		names[i] = "e"
	}
	ids := tb.InsertEvents(t, names...)
	tb.Start(t, nil, tb.Config)
	tb.WaitRecorded(t, len(ids))
	want := map[string][]string{}
	for _, id := range ids {
		want[id] = []string{"k"}
	}
	tb.requireExactlyOnce(t, want)
}

func TestListenerTerminatedReconnectsAndCatchesUp(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	// A poll interval far beyond the test: only notifications and the
	// catch-up after reconnecting can dispatch.
	cfg := tb.Config
	cfg.PollInterval = time.Hour
	pcfg, err := pgxpool.ParseConfig(tb.DB.URL)
	require.NoError(t, err)
	appName := "nb-" + tb.DB.Schema
	pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b := tb.Start(t, pool, cfg)

	first := tb.InsertEvents(t, "e")
	tb.WaitRecorded(t, 1)

	// Kill every connection of this bridge: listener and pool.
	killed := testdb.Count(t, tb.DB.Pool, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name IN ($1, $2)`, appName, "notified-bridge listener "+tb.DB.Channel)
	require.GreaterOrEqual(t, killed, 1)
	// Events committed while the bridge is disconnected.
	during := tb.InsertEvents(t, "e", "e", "e")
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		return b.Stats().Reconnects >= 1 && b.Listening(), "listener has not reconnected"
	})
	after := tb.InsertEvents(t, "e")
	tb.WaitRecorded(t, 5)
	want := map[string][]string{}
	for _, id := range append(append(first, during...), after...) {
		want[id] = []string{"k"}
	}
	tb.requireExactlyOnce(t, want)
}

func TestCrashBetweenDispatchStepsLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	for _, step := range bridge.Steps {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			tb.Route(t, "e", "k1")
			tb.Route(t, "e", "k2")
			ids := tb.InsertEvents(t, "e", "e", "e", "skip")
			ctx := context.Background()

			crashed, err := bridge.New(ctx, tb.DB.Pool, tb.Config)
			require.NoError(t, err)
			crash := errors.New("simulated crash after " + step)
			bridge.SetTestHook(crashed, func(s string) error {
				if s == step {
					return crash
				}
				return nil
			})
			_, err = bridge.DispatchOnce(ctx, crashed)
			require.ErrorIs(t, err, crash)
			// Nothing of the aborted transaction is visible.
			require.Equal(t, 4, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox"))
			require.Equal(t, 0, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch"))
			require.Equal(t, 0, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".river_job"))

			// A bridge that does not crash dispatches everything once.
			tb.Start(t, nil, tb.Config)
			tb.WaitRecorded(t, 4)
			tb.requireExactlyOnce(t, map[string][]string{ids[0]: {"k1", "k2"}, ids[1]: {"k1", "k2"}, ids[2]: {"k1", "k2"}})
			require.Equal(t, "unrouted", tb.Outcomes(t)[ids[3]].Outcome)
		})
	}
}

func TestTwoBridgesShareTheWorkWithoutDuplicates(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k1")
	tb.Route(t, "e", "k2")
	cfg := tb.Config
	cfg.BatchSize = 50 // many small batches, so the bridges interleave
	b1 := tb.Start(t, nil, cfg)
	b2 := tb.Start(t, nil, cfg)

	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				names := make([]string, 50)
				for i := range names {
					names[i] = "e"
				}
				got := tb.InsertEvents(t, names...)
				// Duplicate notifications for some ids, by hand.
				tb.notify(t, got[0], got[1])
				mu.Lock()
				ids = append(ids, got...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	tb.WaitRecorded(t, len(ids))
	want := map[string][]string{}
	for _, id := range ids {
		want[id] = []string{"k1", "k2"}
	}
	tb.requireExactlyOnce(t, want)
	// Each bridge counts a batch after its commit.
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		n := b1.Stats().Dispatched + b2.Stats().Dispatched
		return n == int64(len(ids)), fmt.Sprintf("%d of %d events counted as dispatched", n, len(ids))
	})
	require.Positive(t, b1.Stats().Dispatched)
	require.Positive(t, b2.Stats().Dispatched)
}

func TestRenotifiedEventsGetNoSecondJobEvenAfterRiverDeletesJobs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	b := tb.Start(t, nil, tb.Config)
	ids := tb.InsertEvents(t, "e", "e")
	tb.WaitRecorded(t, 2)

	// River's cleaner deletes finished jobs; the dispatch record stays.
	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Schema+".river_job")
	pub, err := publish.New(tb.DB.Schema, tb.DB.Channel)
	require.NoError(t, err)
	for _, id := range ids {
		tb.notify(t, id)
		// publish sees the dispatch record and writes nothing; an outbox
		// row written otherwise (by hand, an old trigger) is a duplicate.
		res, err := pub.Announce(context.Background(), tb.DB.Pool, id)
		require.NoError(t, err)
		require.True(t, res.AlreadyDispatched())
		tb.Outbox(t, id)
	}
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		st := b.Stats()
		backlog := testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox")
		return st.Duplicates >= 2 && backlog == 0, fmt.Sprintf("duplicates %d, outbox %d", st.Duplicates, backlog)
	})
	require.Equal(t, 0, testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".river_job"))
}

func TestRouteChangesApplyWithoutRestart(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "old")
	tb.Start(t, nil, tb.Config)
	first := tb.InsertEvents(t, "e")
	tb.WaitRecorded(t, 1)

	store := routes.NewStore(tb.DB.Pool, tb.DB.Schema)
	removed, err := store.Remove(context.Background(), "e", "old")
	require.NoError(t, err)
	require.True(t, removed)
	tb.Route(t, "e", "new")
	second := tb.InsertEvents(t, "e")
	tb.WaitRecorded(t, 2)
	tb.requireExactlyOnce(t, map[string][]string{first[0]: {"old"}, second[0]: {"new"}})
}

func TestRunStopsGracefully(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) { return b.Listening(), "not listening" })
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	require.False(t, b.Listening())
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Schema+".x (id int)")
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Schema+".myevents (id bigint, name text)")
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Schema+".numeric_ids (id numeric, name text)")
	unmigrated := testdb.New(t, testdb.Options{NoMigrate: true})

	base := bridge.Config{Schema: db.Schema, Channel: db.Channel, Table: db.Events()}
	for _, tc := range []struct {
		name   string
		mutate func(*bridge.Config)
		is     error
		msg    string
	}{
		{"missing table", func(c *bridge.Config) { c.Table = db.Schema + ".nope" }, bridge.ErrTableNotFound, `"` + db.Schema + `.nope" does not exist`},
		{"hostile table", func(c *bridge.Config) { c.Table = `events"; drop table x; --` }, bridge.ErrTableNotFound, "does not exist"},
		{"case hint", func(c *bridge.Config) { c.Table = db.Schema + ".MyEvents" }, bridge.ErrTableNotFound, "did you mean " + db.Schema + ".myevents"},
		{"missing id column", func(c *bridge.Config) { c.IDColumn = "nope" }, bridge.ErrColumnNotFound, `no id column "nope": set IDColumn`},
		{"hostile id column", func(c *bridge.Config) { c.IDColumn = `id"; drop table x; --` }, bridge.ErrColumnNotFound, "no id column"},
		{"missing name column", func(c *bridge.Config) { c.NameColumn = "kind" }, bridge.ErrColumnNotFound, `no name column "kind": set NameColumn`},
		{"unsupported id type", func(c *bridge.Config) { c.Table = db.Schema + ".numeric_ids" }, bridge.ErrIDType, "is numeric: use smallint"},
		{"too many dots", func(c *bridge.Config) { c.Table = "a.b.c" }, nil, "more than one dot"},
		{"empty table part", func(c *bridge.Config) { c.Table = "a." }, nil, "empty part"},
		{"negative poll interval", func(c *bridge.Config) { c.PollInterval = -time.Second }, nil, "PollInterval -1s is negative"},
		{"batch size", func(c *bridge.Config) { c.BatchSize = 20000 }, nil, "BatchSize 20000 is out of range"},
		{"concurrency", func(c *bridge.Config) { c.Concurrency = -1 }, nil, "Concurrency -1 is out of range"},
		{"schema", func(c *bridge.Config) { c.Schema = "bad-schema" }, nil, `Schema "bad-schema" is not valid`},
		{"long channel", func(c *bridge.Config) { c.Channel = strings.Repeat("c", 64) }, nil, "longer than 63 bytes"},
		{"unmigrated", func(c *bridge.Config) { c.Schema = unmigrated.Schema; c.Table = unmigrated.Events() }, nil, "run `notified-bridge migrate --schema " + unmigrated.Schema + "` first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			_, err := bridge.New(ctx, db.Pool, cfg)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	// The hostile names executed nothing.
	require.Equal(t, 0, testdb.Count(t, db.Pool, "SELECT count(*) FROM "+db.Schema+".x"))
}

func TestNewRequiresSelectOnTheEventsTable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	role := db.Schema + "_bridge"
	pool := roleWithTableRights(t, db, role, "REVOKE SELECT ON "+db.Events()+" FROM "+role)

	_, err := bridge.New(ctx, pool, bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.ErrorIs(t, err, bridge.ErrNoPrivilege)
	require.ErrorContains(t, err, fmt.Sprintf(`role %q cannot SELECT from %s: GRANT SELECT ON %q.%q TO %q`, role, db.Events(), db.Schema, "events", role))
}

// roleWithTableRights creates role, dropped when the test ends, with USAGE
// on the test's schema and every right on its tables and sequences, runs
// the statements given (to take some away), and returns a pool whose
// connections act as role.
func roleWithTableRights(t *testing.T, db *testdb.DB, role string, then ...string) *pgxpool.Pool {
	t.Helper()
	testdb.Exec(t, db.Pool, "CREATE ROLE "+role)
	t.Cleanup(func() {
		testdb.Exec(t, db.Pool, "DROP OWNED BY "+role)
		testdb.Exec(t, db.Pool, "DROP ROLE "+role)
	})
	testdb.Exec(t, db.Pool, "GRANT USAGE ON SCHEMA "+db.Schema+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT ALL ON ALL TABLES IN SCHEMA "+db.Schema+" TO "+role)
	testdb.Exec(t, db.Pool, "GRANT ALL ON ALL SEQUENCES IN SCHEMA "+db.Schema+" TO "+role)
	for _, sql := range then {
		testdb.Exec(t, db.Pool, sql)
	}
	pcfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	pcfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SET ROLE "+role)
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestValidateChannel(t *testing.T) {
	t.Parallel()
	require.NoError(t, bridge.ValidateChannel("MyEvents-2"))
	require.NoError(t, bridge.ValidateChannel(strings.Repeat("c", 63)))
	require.EqualError(t, bridge.ValidateChannel(""), "Channel is empty: name the NOTIFY channel the producers send on")
	require.EqualError(t, bridge.ValidateChannel(strings.Repeat("c", 64)),
		`channel "`+strings.Repeat("c", 64)+`" is longer than 63 bytes, which Postgres truncates: use a shorter channel`)
}

func TestParseInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"5", 5 * time.Second, ""},
		{"0.5", 500 * time.Millisecond, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{" 2s ", 2 * time.Second, ""},
		{"0", 0, `interval "0" is not positive`},
		{"-1", 0, `interval "-1" is not positive`},
		{"-1s", 0, `interval "-1s" is not positive`},
		{"abc", 0, `interval "abc" is not a number of seconds or a duration`},
		{"", 0, `interval "" is not a number of seconds or a duration`},
		{"NaN", 0, `interval "NaN" is not positive`},
		{"1e300", 0, `interval "1e300" is too long`},
	} {
		got, err := bridge.ParseInterval(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "input %q", tc.in)
			continue
		}
		require.NoError(t, err, "input %q", tc.in)
		require.Equal(t, tc.want, got, "input %q", tc.in)
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, formatted, in, want, err string
	}{
		{"int8", "bigint", "42", "42", ""},
		{"int8", "bigint", "+42", "42", ""},
		{"int8", "bigint", "0042", "42", ""},
		{"int8", "bigint", "-3", "-3", ""},
		{"int8", "bigint", "9223372036854775807", "9223372036854775807", ""},
		{"int8", "bigint", "9223372036854775808", "", "out of range for id column type bigint"},
		{"int4", "integer", "2147483648", "", "out of range for id column type integer"},
		{"int2", "smallint", "40000", "", "out of range for id column type smallint"},
		{"int8", "bigint", " 42", "", "not a valid bigint id"},
		{"int8", "bigint", "4e2", "", "not a valid bigint id"},
		{"int8", "bigint", "١٢", "", "not a valid bigint id"},
		{"int8", "bigint", "a4b1c0de-0000-4000-8000-000000000000", "", "not a valid bigint id"},
		{"uuid", "uuid", "A4B1C0DE-0000-4000-8000-00000000000F", "a4b1c0de-0000-4000-8000-00000000000f", ""},
		{"uuid", "uuid", "{a4b1c0de-0000-4000-8000-000000000000}", "a4b1c0de-0000-4000-8000-000000000000", ""},
		{"uuid", "uuid", "a4b1c0de000040008000000000000000", "a4b1c0de-0000-4000-8000-000000000000", ""},
		{"uuid", "uuid", "42", "", "not a valid uuid id"},
		{"uuid", "uuid", "a4b1c0de-0000-4000-8000-00000000000g", "", "not a valid uuid id"},
		{"text", "text", "héllo wörld", "héllo wörld", ""},
		{"text", "text", "", "", "payload is empty"},
		{"varchar", "character varying(10)", strings.Repeat("x", 1025), "", "payload is 1025 bytes"},
	} {
		got, err := bridge.ParseIDForTest(tc.typ, tc.formatted, tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%s %q", tc.typ, tc.in)
			continue
		}
		require.NoError(t, err, "%s %q", tc.typ, tc.in)
		require.Equal(t, tc.want, got, "%s %q", tc.typ, tc.in)
	}
}

// TestHandSentIDWithoutRowIsIgnoredThenDispatchedWithItsRow: an id notified
// by hand before its row exists is not recorded (any role can NOTIFY) but
// counted as ignored once the grace has passed; the row inserted later is
// still dispatched, once.
func TestHandSentIDWithoutRowIsIgnoredThenDispatchedWithItsRow(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "e", "k")
	cfg := tb.Config
	cfg.MissingGrace = 50 * time.Millisecond
	_, sigs := tb.startWatched(t, cfg)

	tb.notify(t, "4242")
	waitIgnored(t, sigs, 1)
	require.Equal(t, []bridge.Ignored{{Reason: "no_row", Notifications: 1}}, sigs.Ignored.All())
	require.Empty(t, tb.Outcomes(t))

	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+tb.DB.Events()+" (id, name) VALUES (4242, 'e')")
	testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
		o := tb.Outcomes(t)["4242"]
		return o.Outcome == "dispatched", "event 4242 is " + o.Outcome
	})
	require.Equal(t, outcome{Outcome: "dispatched", Name: "e"}, tb.Outcomes(t)["4242"])

	// Notified again, by hand: no second job. Three notifications in all:
	// by hand, by the trigger, by hand again.
	tb.notify(t, "4242")
	waitNotificationsHandled(t, sigs, 3)
	tb.WaitRecorded(t, 1)
	require.Equal(t, map[string][]string{"4242": {"k"}}, tb.jobsByEvent(t))
}
