package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/lanes"
	"github.com/notified/notified/replay"
	"github.com/notified/notified/routes"
)

// laneRun is one attempt of an ordered job, as its handler saw it.
type laneRun struct {
	key        string // the order_id in the event's payload, "" for none
	event      int64
	attempt    int
	start, end time.Time
}

// laneRecorder records the runs of a handler.
type laneRecorder struct {
	mu   sync.Mutex
	runs []laneRun
}

func (r *laneRecorder) add(run laneRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run)
}

// byKey returns the runs of each key, in the order they started.
func (r *laneRecorder) byKey() map[string][]laneRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]laneRun{}
	for _, run := range r.runs {
		out[run.key] = append(out[run.key], run)
	}
	for _, rs := range out {
		slices.SortFunc(rs, func(a, b laneRun) int { return a.start.Compare(b.start) })
	}
	return out
}

func (r *laneRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

// orderKey reads payload.order_id of an event as text ("" if none).
func orderKey(t testing.TB, ev jobs.Event) (string, int64) {
	var row struct {
		ID      int64 `json:"id"`
		Payload struct {
			OrderID json.RawMessage `json:"order_id"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(ev.Data, &row))
	key := string(row.Payload.OrderID)
	if key == "null" {
		key = ""
	}
	return key, row.ID
}

// soonRetry retries a failed job after 10ms.
type soonRetry struct{}

func (soonRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

// startLaneWorkers runs a River client with maxWorkers workers of kind in
// the bundle's schema until the test ends; fn decides each run's outcome.
func (tb *testBundle) startLaneWorkers(t *testing.T, kind string, maxWorkers int, rec *laneRecorder,
	fn func(run laneRun) error) *river.Client[pgx.Tx] {
	t.Helper()
	return tb.startHandlers(t, kind, maxWorkers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		key, id := orderKey(t, ev)
		run := laneRun{key: key, event: id, attempt: ev.Job.Attempt, start: time.Now()}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		var err error
		if fn != nil {
			err = fn(run)
		}
		run.end = time.Now()
		rec.add(run)
		return jobs.Success(nil), err
	})
}

// startHandlers runs a River client with maxWorkers workers running handle
// for kind in the bundle's schema until the test ends.
func (tb *testBundle) startHandlers(t *testing.T, kind string, maxWorkers int, handle jobs.HandlerFunc) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, kind, handle))
	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{
		Schema:            tb.DB.Schema,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers:           workers,
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: time.Second, // lanes must not need the poll
		RetryPolicy:       soonRetry{},
		Logger:            testLogger(t),
		TestOnly:          true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	return client
}

// addOrderedRoute adds a route ordered by payload.order_id.
func (tb *testBundle) addOrderedRoute(t testing.TB, event, kind, onFailure string) {
	t.Helper()
	require.NoError(t, routes.NewStore(tb.DB.Pool, tb.DB.Schema).Add(context.Background(),
		routes.Route{Event: event, Kind: kind, OrderedBy: "$.payload.order_id", OnFailure: onFailure}))
}

// insertOrders inserts one event named name per key, each in its own
// transaction (so their commit order is their id order); a key "" has no
// order_id. It returns the ids.
func (tb *testBundle) insertOrders(t testing.TB, name string, keys ...string) []int64 {
	t.Helper()
	ids := make([]int64, len(keys))
	for i, k := range keys {
		payload := `{"n": ` + strconv.Itoa(i) + `}`
		if k != "" {
			payload = `{"order_id": ` + k + `}`
		}
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
			"INSERT INTO "+tb.Config.Table+" (name, payload) VALUES ($1, $2::jsonb) RETURNING id", name, payload).Scan(&ids[i]))
	}
	return ids
}

// waitFor polls cond until it holds, or fails with what describe says.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireLaneOrder checks that the runs of each key ran one at a time, in
// the order of want (event ids per key).
func requireLaneOrder(t testing.TB, got map[string][]laneRun, want map[string][]int64) {
	t.Helper()
	for key, ids := range want {
		runs := got[key]
		events := make([]int64, len(runs))
		for i, r := range runs {
			events[i] = r.event
			if i > 0 {
				require.False(t, r.start.Before(runs[i-1].end), "key %s: event %d started before event %d ended", key, r.event, runs[i-1].event)
			}
		}
		require.Equal(t, ids, events, "key %s runs in commit order", key)
	}
}

// TestOrderedRouteRunsEachKeyInCommitOrder: with many workers, the jobs of
// one key run one at a time in the order their events were committed, keys
// run in parallel, and events without a key are not held back.
func TestOrderedRouteRunsEachKeyInCommitOrder(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	var keys []string
	want := map[string][]int64{}
	for i := range 60 {
		keys = append(keys, []string{"1", `"A-17"`, "3", "4.5", ""}[i%5])
	}
	keys = append(keys, "null", `{"b": 1, "a": [2]}`)
	ids := tb.insertOrders(t, "order_event", keys...)
	for i, k := range keys {
		if k != "" && k != "null" {
			if k == `{"b": 1, "a": [2]}` {
				k = `{"a": [2], "b": 1}` // as jsonb prints it
			}
			want[k] = append(want[k], ids[i])
		}
	}
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 10, rec, nil)
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= len(keys) }, func() string {
		return fmt.Sprintf("%d of %d jobs ran", rec.count(), len(keys))
	})
	got := rec.byKey()
	requireLaneOrder(t, got, want)
	require.Len(t, got[""], 13, "events without a key (12 missing, 1 null) run unordered")

	// The ordered jobs carry their lane; the others do not; no lane is left.
	var laned, unlaned int
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE metadata->'notified' ? 'lane'), count(*) FILTER (WHERE NOT metadata->'notified' ? 'lane')
		FROM `+tb.DB.Schema+`.river_job`).Scan(&laned, &unlaned))
	require.Equal(t, 49, laned)
	require.Equal(t, 13, unlaned)
	waitFor(t, 10*time.Second, func() bool { return tb.count(t, "notified_lane") == 0 }, func() string {
		return fmt.Sprintf("%d lanes left", tb.count(t, "notified_lane"))
	})
	require.Zero(t, tb.count(t, "notified_lane_job"))
}

// count counts the rows of one of notified's tables.
func (tb *testBundle) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+tb.DB.Schema+"."+table).Scan(&n))
	return n
}

// TestOrderedLaneRetryKeepsItsPlace: a job that fails and is retried holds
// its lane: the jobs after it wait until it succeeds.
func TestOrderedLaneRetryKeepsItsPlace(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "7", "7", "7", "7")
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, func(run laneRun) error {
		if run.event == ids[1] && run.attempt < 3 {
			return errors.New("try again")
		}
		return nil
	})
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 6 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	runs := rec.byKey()["7"]
	var order []string
	for _, r := range runs {
		order = append(order, fmt.Sprintf("%d/%d", r.event, r.attempt))
	}
	require.Equal(t, []string{
		fmt.Sprintf("%d/1", ids[0]), fmt.Sprintf("%d/1", ids[1]), fmt.Sprintf("%d/2", ids[1]), fmt.Sprintf("%d/3", ids[1]),
		fmt.Sprintf("%d/1", ids[2]), fmt.Sprintf("%d/1", ids[3]),
	}, order)
}

// jobOf returns the id of the job of event id.
func (tb *testBundle) jobOf(t testing.TB, event int64) int64 {
	t.Helper()
	var id int64
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		"SELECT id FROM "+tb.DB.Schema+".river_job WHERE metadata->'notified'->>'event_id' = $1", strconv.FormatInt(event, 10)).Scan(&id))
	return id
}

// TestOrderedLaneGoesOnPastAFailure: a job cancelled for good releases the
// next job of its lane, and the lane's history says it went on past it.
func TestOrderedLaneGoesOnPastAFailure(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", routes.OnFailureContinue)
	ids := tb.insertOrders(t, "order_event", "9", "9", "9")
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, func(run laneRun) error {
		if run.event == ids[1] {
			return jobs.Permanent(errors.New("no such warehouse"))
		}
		return nil
	})
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 3 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"9": ids})

	events, err := lanes.NewStore(tb.DB.Pool, tb.DB.Schema).Events(context.Background(), []int64{tb.jobOf(t, ids[1])})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, lanes.ActionContinued, events[0].Action)
	require.Equal(t, "cancelled", events[0].JobState)
	require.Equal(t, "9", events[0].Key)
	require.Equal(t, tb.jobOf(t, ids[2]), *events[0].NextJobID)
}

// TestOrderedLaneStopsAtAFailureUntilResumed: with on-failure stop, a
// discarded job stops its lane (other lanes go on) until an operator
// resumes it, skipping the failed job or retrying it first.
func TestOrderedLaneStopsAtAFailureUntilResumed(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", routes.OnFailureStop)
	ids := tb.insertOrders(t, "order_event", "1", "1", "1", "2", "2", "1")
	var failing sync.Map
	failing.Store(ids[1], true)
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, func(run laneRun) error {
		if _, ok := failing.Load(run.event); ok {
			return jobs.Permanent(errors.New("out of stock"))
		}
		return nil
	})
	b, _ := tb.startWatched(t, tb.Config)
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 4 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })

	store := lanes.NewStore(tb.DB.Pool, tb.DB.Schema)
	var stopped []lanes.Lane
	waitFor(t, 10*time.Second, func() bool {
		var err error
		stopped, err = store.List(context.Background(), lanes.ListOptions{Stopped: true})
		require.NoError(t, err)
		return len(stopped) == 1 && rec.count() == 4
	}, func() string { return fmt.Sprintf("stopped lanes: %+v, %d runs", stopped, rec.count()) })
	require.Equal(t, "1", stopped[0].Key)
	require.Equal(t, tb.jobOf(t, ids[1]), *stopped[0].StoppedJobID)
	require.EqualValues(t, 2, stopped[0].Waiting)
	summary, err := store.Summary(context.Background(), tb.DB.Channel)
	require.NoError(t, err)
	require.Equal(t, []lanes.KindSummary{{Kind: "fulfil", Lanes: 1, Stopped: 1, Waiting: 2}}, summary)
	ch := `channel="` + tb.DB.Channel + `"`
	require.ElementsMatch(t, []string{
		`notified_lanes{` + ch + `,handler="fulfil",state="running"} 0`,
		`notified_lanes{` + ch + `,handler="fulfil",state="stopped"} 1`,
	}, scrape(t, reg, "notified_lanes{"))
	require.Equal(t, []string{`notified_lane_jobs_waiting{` + ch + `,handler="fulfil"} 2`}, scrape(t, reg, "notified_lane_jobs_waiting"))
	require.Equal(t, "pending", tb.jobState(t, ids[2]), "the jobs behind the failure wait")

	// Resuming a lane that does not exist, or is not stopped, says so.
	_, err = store.Resume(context.Background(), lanes.ResumeParams{Channel: tb.DB.Channel, Kind: "fulfil", Key: "3"})
	require.ErrorIs(t, err, lanes.ErrNoLane)

	// Retry the failed job first: it fails again, and stops the lane again.
	_, err = store.Resume(context.Background(), lanes.ResumeParams{Channel: tb.DB.Channel, Kind: "fulfil", Key: "1",
		RetryFailed: true, RequestedBy: "test", Reason: "stock arrived"})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 5 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	waitFor(t, 10*time.Second, func() bool {
		l, err := store.List(context.Background(), lanes.ListOptions{Stopped: true})
		return err == nil && len(l) == 1
	}, func() string { return "lane 1 did not stop again" })

	// Skip it: the lane goes on, in order.
	failing.Delete(ids[1])
	job, err := store.Resume(context.Background(), lanes.ResumeParams{Channel: tb.DB.Channel, Kind: "fulfil", Key: "1",
		RequestedBy: "test", Reason: "refunded by hand"})
	require.NoError(t, err)
	require.Equal(t, tb.jobOf(t, ids[1]), job)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 7 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"1": {ids[0], ids[1], ids[1], ids[2], ids[5]}, "2": {ids[3], ids[4]}})
	_, err = store.Resume(context.Background(), lanes.ResumeParams{Channel: tb.DB.Channel, Kind: "fulfil", Key: "1"})
	require.True(t, errors.Is(err, lanes.ErrNoLane) || errors.Is(err, lanes.ErrNotStopped), "got %v", err)

	events, err := store.Events(context.Background(), []int64{job})
	require.NoError(t, err)
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	require.Equal(t, []string{"stopped", "resumed", "stopped", "resumed"}, actions)
	require.Equal(t, "refunded by hand", events[3].Reason)
}

// jobState returns the River state of the job of event id ("none" before it has one).
func (tb *testBundle) jobState(t testing.TB, event int64) string {
	t.Helper()
	var state string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		"SELECT coalesce((SELECT state::text FROM "+tb.DB.Schema+".river_job WHERE metadata->'notified'->>'event_id' = $1), 'none')",
		strconv.FormatInt(event, 10)).Scan(&state))
	return state
}

// gate holds the handler of one event until opened.
type gate struct {
	event   int64
	entered chan struct{}
	open    chan struct{}
}

// gatedLaneWorkers starts four workers of kind fulfil whose handler of
// event waits, the first time, until the gate it returns opens; rec records
// every run.
func (tb *testBundle) gatedLaneWorkers(t *testing.T, event int64) (*gate, *laneRecorder) {
	t.Helper()
	g := &gate{event: event, entered: make(chan struct{}, 1), open: make(chan struct{})}
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, func(run laneRun) error { g.hold(run); return nil })
	return g, rec
}

// hold blocks run of the gate's event, the first time, until the gate opens.
func (g *gate) hold(run laneRun) {
	if run.event != g.event || run.attempt > 1 {
		return
	}
	select {
	case g.entered <- struct{}{}:
		<-g.open
	default:
	}
}

func (g *gate) waitEntered(t testing.TB) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatalf("event %d's handler did not start", g.event)
	}
}

// TestOrderedReplayJoinsTheEndOfItsLane: a replayed event's job goes after
// the jobs waiting in its lane, whatever its event's place was.
func TestOrderedReplayJoinsTheEndOfItsLane(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "5", "5", "5")
	g, rec := tb.gatedLaneWorkers(t, ids[0])
	tb.startWatched(t, tb.Config)
	g.waitEntered(t)
	res, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, replay.Selector{IDs: []string{strconv.FormatInt(ids[0], 10)}},
		replay.Options{Reason: "test", RequestedBy: "test"})
	require.NoError(t, err)
	require.Equal(t, 1, res.Jobs)
	close(g.open)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 4 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"5": {ids[0], ids[1], ids[2], ids[0]}})
}

// TestOrderingAppliesToEventsDispatchedAfterTheChange: making a route
// ordered leaves the jobs made before unordered; the events dispatched
// after get lanes.
func TestOrderingAppliesToEventsDispatchedAfterTheChange(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addRoute(t, "order_event", "fulfil", "")
	before := tb.insertOrders(t, "order_event", "1", "1")
	tb.startWatched(t, tb.Config)
	tb.WaitRecorded(t, 2)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	after := tb.insertOrders(t, "order_event", "1", "1")
	tb.WaitRecorded(t, 4)
	lane := func(event int64) string {
		var l *string
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
			"SELECT metadata->'notified'->>'lane' FROM "+tb.DB.Schema+".river_job WHERE metadata->'notified'->>'event_id' = $1",
			strconv.FormatInt(event, 10)).Scan(&l))
		if l == nil {
			return ""
		}
		return *l
	}
	require.Equal(t, "", lane(before[0]))
	require.Equal(t, "", lane(before[1]))
	require.Equal(t, "1", lane(after[0]))
	require.Equal(t, "1", lane(after[1]))
	require.Equal(t, "available", tb.jobState(t, after[0]), "the lane's first job is released")
	require.Equal(t, "pending", tb.jobState(t, after[1]), "the next waits")
}

// TestOrderedLargeRowsKeepTheirPlace: the jobs of rows too large to leave
// the server are inserted by another statement, yet take their events'
// places in their lanes.
func TestOrderedLargeRowsKeepTheirPlace(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	var ids []int64
	for i := range 8 {
		payload := `{"order_id": 3}`
		if i%3 == 1 {
			payload = `{"order_id": 3, "blob": "` + strings.Repeat("x", 4000) + `"}`
		}
		var id int64
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
			"INSERT INTO "+tb.Config.Table+" (name, payload) VALUES ('order_event', $1::jsonb) RETURNING id", payload).Scan(&id))
		ids = append(ids, id)
	}
	cfg := tb.Config
	cfg.LargeRowBytes = 1000
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, nil)
	tb.startWatched(t, cfg)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= len(ids) }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"3": ids})
}

// TestOrderedLaneGoesOnWhenItsHeadIsDeleted: deleting a lane's head (a
// snoozed job, by hand) releases the next job.
func TestOrderedLaneGoesOnWhenItsHeadIsDeleted(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "4", "4")
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 4, rec, func(run laneRun) error {
		if run.event == ids[0] {
			return river.JobSnooze(time.Hour)
		}
		return nil
	})
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[0]) == "scheduled" }, func() string { return tb.jobState(t, ids[0]) })
	require.Equal(t, "pending", tb.jobState(t, ids[1]), "a snoozed head holds its lane")
	_, err := tb.DB.Pool.Exec(context.Background(), "DELETE FROM "+tb.DB.Schema+".river_job WHERE id = $1", tb.jobOf(t, ids[0]))
	require.NoError(t, err)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 2 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	require.Equal(t, ids[1], rec.byKey()["4"][1].event)
}

// TestOrderedLaneHeldAtFinalizationIsWokenByTheBridge: River's
// transaction that finalizes a lane's head does not wait for a lane another
// transaction holds; it leaves the lane to the bridge, which releases the
// next job as soon as the holder commits.
func TestOrderedLaneHeldAtFinalizationIsWokenByTheBridge(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "8", "8")
	g, rec := tb.gatedLaneWorkers(t, ids[0])
	b, _ := tb.startWatched(t, tb.Config)
	g.waitEntered(t)

	holder := tb.holdLane(t)
	close(g.open)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[0]) == "completed" }, func() string { return tb.jobState(t, ids[0]) })
	require.Equal(t, 1, tb.count(t, "notified_lane_wake"), "the lane is left for the bridge")
	require.Equal(t, "pending", tb.jobState(t, ids[1]))
	require.NoError(t, holder.Commit(context.Background()))
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 2 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"8": ids})
	require.Zero(t, tb.count(t, "notified_lane_wake"))
	require.EqualValues(t, 1, b.Stats().LanesWoken)
}

// TestOrderedLanesWithSeveralBridges: with two bridges of three drains each
// and producers committing while they run, each key's jobs still run in
// the order their events were committed.
func TestOrderedLanesWithSeveralBridges(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	rec := &laneRecorder{}
	tb.startLaneWorkers(t, "fulfil", 8, rec, nil)
	cfg := tb.Config
	cfg.Concurrency, cfg.BatchSize = 3, 7
	tb.startWatched(t, cfg)
	tb.startWatched(t, cfg)
	const perKey = 60
	want := map[string][]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range 3 {
		key := strconv.Itoa(k + 1)
		wg.Go(func() {
			ids := tb.insertOrders(t, "order_event", slices.Repeat([]string{key}, perKey)...)
			mu.Lock()
			want[key] = ids
			mu.Unlock()
		})
	}
	wg.Wait()
	waitFor(t, 60*time.Second, func() bool { return rec.count() >= 3*perKey }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), want)
}

// TestOrderedLaneWaitsForARescuedHead: a head left running by a worker that
// died is brought back by River's rescuer and run again before the next job
// of its lane: the lane does not skip it.
func TestOrderedLaneWaitsForARescuedHead(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "6", "6")
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[1]) == "pending" }, func() string { return tb.jobState(t, ids[1]) })
	// A worker took the head, then died.
	_, err := tb.DB.Pool.Exec(context.Background(), "UPDATE "+tb.DB.Schema+".river_job SET state = 'running', attempt = 1,"+
		" attempted_at = now() - interval '1 hour', attempted_by = '{dead-worker}' WHERE id = $1", tb.jobOf(t, ids[0]))
	require.NoError(t, err)

	rec := &laneRecorder{}
	workers := river.NewWorkers()
	require.NoError(t, jobs.HandleFunc(workers, "fulfil", func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		key, id := orderKey(t, ev)
		run := laneRun{key: key, event: id, attempt: ev.Job.Attempt, start: time.Now()}
		run.end = time.Now()
		rec.add(run)
		return jobs.Success(nil), nil
	}))
	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{
		Schema: tb.DB.Schema, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}}, Workers: workers,
		FetchCooldown: 5 * time.Millisecond, RescueStuckJobsAfter: time.Minute, RetryPolicy: soonRetry{},
		Logger: testLogger(t), TestOnly: true,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	waitFor(t, 60*time.Second, func() bool { return rec.count() >= 2 }, func() string {
		return fmt.Sprintf("%d runs; head %s, next %s", rec.count(), tb.jobState(t, ids[0]), tb.jobState(t, ids[1]))
	})
	runs := rec.byKey()["6"]
	require.Equal(t, ids[0], runs[0].event, "the rescued head runs first")
	require.Equal(t, 2, runs[0].attempt, "as its second attempt")
	require.Equal(t, ids[1], runs[1].event)
}

// TestOrderedLaneSkipsAJobCancelledWhileWaiting: a job cancelled while it
// waits for its turn (by hand, in River UI) is skipped when its lane gets to
// it: the job after it runs next, in order.
func TestOrderedLaneSkipsAJobCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	ids := tb.insertOrders(t, "order_event", "2", "2", "2")
	g, rec := tb.gatedLaneWorkers(t, ids[0])
	tb.startWatched(t, tb.Config)
	g.waitEntered(t)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[2]) == "pending" }, func() string { return tb.jobState(t, ids[2]) })
	_, err := tb.DB.Pool.Exec(context.Background(), "UPDATE "+tb.DB.Schema+".river_job SET state = 'cancelled', finalized_at = now() WHERE id = $1",
		tb.jobOf(t, ids[1]))
	require.NoError(t, err)
	close(g.open)
	waitFor(t, 30*time.Second, func() bool { return rec.count() >= 2 }, func() string { return fmt.Sprintf("%d runs", rec.count()) })
	requireLaneOrder(t, rec.byKey(), map[string][]int64{"2": {ids[0], ids[2]}})
	waitFor(t, 10*time.Second, func() bool { return tb.count(t, "notified_lane") == 0 }, func() string { return "a lane is left" })
}

// TestOrderedLaneKeyTooLongIsHashed: a key longer than 200 bytes, which a
// producer controls, becomes "sha256:" and its digest, so it can be indexed;
// events with the same long key share a lane.
func TestOrderedLaneKeyTooLongIsHashed(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	long := `"` + strings.Repeat("x", 100_000) + `"`
	ids := tb.insertOrders(t, "order_event", long, long)
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[1]) == "pending" }, func() string { return tb.jobState(t, ids[1]) })
	var key string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), "SELECT key FROM "+tb.DB.Schema+".notified_lane").Scan(&key))
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, key)
	require.Equal(t, "available", tb.jobState(t, ids[0]), "the lane's first job runs")
}

// laneOfTwo makes, by SQL alone, a lane of key "8" on channel "c" whose
// head is an available job and whose second job is pending, and returns
// the two jobs' ids.
func (tb *testBundle) laneOfTwo(t testing.TB) (head, next int64) {
	t.Helper()
	ctx := context.Background()
	s := tb.DB.Schema
	tx, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	var heads []bool
	require.NoError(t, tx.QueryRow(ctx, "SELECT "+s+".notified_lane_open('c', '{fulfil,fulfil}', '{8,8}')").Scan(&heads))
	require.Equal(t, []bool{true, false}, heads)
	ids := make([]int64, 2)
	for i, state := range []string{"available", "pending"} {
		require.NoError(t, tx.QueryRow(ctx, "INSERT INTO "+s+".river_job (args, kind, max_attempts, metadata, priority, queue, state) "+
			`VALUES ('{}', 'fulfil', 5, '{"notified": {"channel": "c", "lane": "8"}}', 1, 'default', $1) RETURNING id`, state).Scan(&ids[i]))
	}
	_, err = tx.Exec(ctx, "SELECT "+s+".notified_lane_append('c', '{fulfil,fulfil}', '{8,8}', '{f,f}', $1, '{t,f}')", ids)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	return ids[0], ids[1]
}

// holdLane locks the lane of key "8", as a dispatch appending to it does,
// until the transaction it returns ends (at the latest with the test).
func (tb *testBundle) holdLane(t testing.TB) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	holder, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = holder.Rollback(ctx) })
	_, err = holder.Exec(ctx, "SELECT 1 FROM "+tb.DB.Schema+".notified_lane WHERE key = '8' FOR UPDATE")
	require.NoError(t, err)
	return holder
}

// completeWhileHeld completes job while another transaction holds its
// lane, which leaves the lane in notified_lane_wake.
func (tb *testBundle) completeWhileHeld(t testing.TB, job int64) {
	t.Helper()
	holder := tb.holdLane(t)
	_, err := tb.DB.Pool.Exec(context.Background(), "UPDATE "+tb.DB.Schema+".river_job SET state = 'completed', finalized_at = now() WHERE id = $1", job)
	require.NoError(t, err)
	require.Equal(t, 1, tb.count(t, "notified_lane_wake"), "the lane is left to wake")
	require.NoError(t, holder.Rollback(context.Background()))
}

func (tb *testBundle) stateOfJob(t testing.TB, job int64) string {
	t.Helper()
	var state string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), "SELECT state::text FROM "+tb.DB.Schema+".river_job WHERE id = $1", job).Scan(&state))
	return state
}

// TestLaneWakerSkipsAHeldLane: the lane waker never waits for a lane
// another transaction holds (a dispatch appending to it); the lane keeps
// its wake row, and the next call, once the holder is done, moves it on.
func TestLaneWakerSkipsAHeldLane(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	head, next := tb.laneOfTwo(t)
	holder := tb.holdLane(t)
	_, err := tb.DB.Pool.Exec(ctx, "UPDATE "+tb.DB.Schema+".river_job SET state = 'completed', finalized_at = now() WHERE id = $1", head)
	require.NoError(t, err)

	wake := "SELECT " + tb.DB.Schema + ".notified_lane_wake_up()"
	waker, err := tb.DB.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = waker.Rollback(ctx) }()
	_, err = waker.Exec(ctx, "SET LOCAL lock_timeout = '2s'")
	require.NoError(t, err)
	var n int
	require.NoError(t, waker.QueryRow(ctx, wake).Scan(&n), "the waker does not wait for the held lane")
	require.NoError(t, waker.Commit(ctx))
	require.Zero(t, n)
	require.Equal(t, 1, tb.count(t, "notified_lane_wake"), "the held lane keeps its wake row")
	require.Equal(t, "pending", tb.stateOfJob(t, next))

	require.NoError(t, holder.Commit(ctx))
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, wake).Scan(&n))
	require.Equal(t, 1, n)
	require.Zero(t, tb.count(t, "notified_lane_wake"))
	require.Equal(t, "available", tb.stateOfJob(t, next))
}

// TestLaneOpenMovesOnALaneLeftToWake: a dispatch that opens a lane whose
// head was finalized while another transaction held it moves the lane on
// itself, without waiting for the lane waker: on a busy channel,
// dispatches hold their lanes most of the time.
func TestLaneOpenMovesOnALaneLeftToWake(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	head, next := tb.laneOfTwo(t)
	tb.completeWhileHeld(t, head)

	var heads []bool
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, "SELECT "+tb.DB.Schema+".notified_lane_open('c', '{fulfil}', '{8}')").Scan(&heads))
	require.Equal(t, []bool{false}, heads, "the job released is the lane's head")
	require.Equal(t, "available", tb.stateOfJob(t, next))
	require.Zero(t, tb.count(t, "notified_lane_wake"))

	// Its head done too, the lane is gone, and the next dispatch makes it
	// again, with its job as the head.
	tb.completeWhileHeld(t, next)
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, "SELECT "+tb.DB.Schema+".notified_lane_open('c', '{fulfil}', '{8}')").Scan(&heads))
	require.Equal(t, []bool{true}, heads)
	require.Equal(t, 1, tb.count(t, "notified_lane"))
}

// TestOrderedLaneStepsInTheHandlersTransaction: a handler that completes its
// job in its own transaction (jobs.CompleteTx) releases the next job of its
// lane in that transaction: the next job is available as soon as it
// commits, before River's completer records anything.
func TestOrderedLaneStepsInTheHandlersTransaction(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.addOrderedRoute(t, "order_event", "fulfil", "")
	_, err := tb.DB.Pool.Exec(ctx, "CREATE TABLE "+tb.DB.Schema+".fulfilled (event bigint PRIMARY KEY)")
	require.NoError(t, err)
	ids := tb.insertOrders(t, "order_event", "5", "5", "5")
	var mu sync.Mutex
	nextSeen := map[int64]string{} // the state of the next job, seen by a handler once its transaction committed
	tb.startHandlers(t, "fulfil", 4, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		_, id := orderKey(t, ev)
		tx, err := tb.DB.Pool.Begin(ctx)
		if err != nil {
			return jobs.Result{}, err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "INSERT INTO "+tb.DB.Schema+".fulfilled VALUES ($1)", id); err != nil {
			return jobs.Result{}, err
		}
		if err := jobs.CompleteTx(ctx, tx, ev, map[string]int64{"fulfilled": id}); err != nil {
			return jobs.Result{}, err
		}
		if err := tx.Commit(ctx); err != nil {
			return jobs.Result{}, err
		}
		if i := slices.Index(ids, id); i+1 < len(ids) {
			mu.Lock()
			nextSeen[id] = tb.jobState(t, ids[i+1])
			mu.Unlock()
		}
		return jobs.Success(nil), nil
	})
	tb.startWatched(t, tb.Config)
	waitFor(t, 30*time.Second, func() bool { return tb.jobState(t, ids[2]) == "completed" }, func() string { return tb.jobState(t, ids[2]) })
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids[:2] {
		require.Contains(t, []string{"available", "running", "completed"}, nextSeen[id], "the job after event %d was released by its handler's commit", id)
	}
	require.Equal(t, len(ids), tb.count(t, "fulfilled"))
	var out string
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, "SELECT metadata->>'output' FROM "+tb.DB.Schema+".river_job WHERE metadata->'notified'->>'event_id' = $1",
		strconv.FormatInt(ids[0], 10)).Scan(&out))
	require.JSONEq(t, fmt.Sprintf(`{"fulfilled": %d}`, ids[0]), out)
}
