package replay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/bridgetest"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/replay"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

// dispatchAndStop runs a bridge until want events are recorded in
// notified_dispatch and the outbox is empty, putting payloads in the outbox
// once it runs (as notified-bridge notify would), then stops it: notified_dispatch then holds real records and the
// jobs stay available, as no worker runs.
func (tb *testBundle) dispatchAndStop(t *testing.T, want int, payloads ...string) {
	t.Helper()
	b, err := bridge.New(context.Background(), tb.DB.Pool, tb.Config)
	require.NoError(t, err)
	stop := bridgetest.Start(t, b)
	if len(payloads) > 0 {
		tb.Outbox(t, payloads...)
	}
	tb.WaitRecorded(t, want)
	stop()
}

// replay runs a replay that must succeed.
func (tb *testBundle) replay(t *testing.T, sel replay.Selector, opts replay.Options) *replay.Result {
	t.Helper()
	res, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, sel, opts)
	require.NoError(t, err)
	require.NotNil(t, res)
	requireAddsUp(t, res)
	return res
}

// dryRun runs a dry-run replay and returns the ids of the events it plans
// jobs for.
func (tb *testBundle) dryRun(t *testing.T, sel replay.Selector, opts replay.Options) []string {
	t.Helper()
	opts.DryRun = true
	res := tb.replay(t, sel, opts)
	require.True(t, res.DryRun)
	require.Zero(t, res.ReplayID)
	ids := []string{}
	for _, p := range res.Planned {
		ids = append(ids, p.EventID)
	}
	return ids
}

// replayNothing runs a replay that must enqueue nothing, and asserts that
// it recorded nothing and returned a *NothingToReplayError, which it returns
// with the result (nil when nothing was selected).
func (tb *testBundle) replayNothing(t *testing.T, sel replay.Selector, opts replay.Options) (*replay.Result, *replay.NothingToReplayError) {
	t.Helper()
	jobs, replays := tb.count(t, "river_job"), tb.count(t, "notified_replay")
	res, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, sel, opts)
	require.ErrorIs(t, err, replay.ErrNothingToReplay)
	var nothing *replay.NothingToReplayError
	require.ErrorAs(t, err, &nothing)
	require.Equal(t, tb.DB.Channel, nothing.Channel)
	if nothing.Selected == 0 {
		require.Nil(t, res)
	} else {
		require.Equal(t, nothing.Selected, res.Selected)
		require.Equal(t, res.Selected, res.SkippedCount)
		require.Equal(t, res.SkippedByCause, nothing.Skipped)
		require.Zero(t, res.Events)
		require.Zero(t, res.Jobs)
		require.Zero(t, res.ReplayID)
	}
	require.Equal(t, jobs, tb.count(t, "river_job"), "jobs")
	require.Equal(t, replays, tb.count(t, "notified_replay"), "replays recorded")
	return res, nothing
}

// requireAddsUp asserts that the figures of a finished replay add up.
func requireAddsUp(t *testing.T, res *replay.Result) {
	t.Helper()
	require.Equal(t, res.Selected, res.Events+res.SkippedCount, "selected = enqueued for + skipped")
	jobs, skipped := 0, 0
	for _, n := range res.JobsByHandler {
		jobs += n
	}
	for _, n := range res.SkippedByCause {
		skipped += n
	}
	require.Equal(t, res.Jobs, jobs, "jobs = sum by handler: %v", res.JobsByHandler)
	require.Equal(t, res.SkippedCount, skipped, "skipped = sum by cause: %v", res.SkippedByCause)
}

// replayedKinds returns the sorted kinds of the jobs replay id created, by
// event id.
func (tb *testBundle) replayedKinds(t *testing.T, replayID int64) map[string][]string {
	t.Helper()
	rows, err := tb.DB.Pool.Query(context.Background(), `SELECT args->>'event_id', kind FROM `+tb.DB.Schema+`.river_job
		WHERE metadata->'notified'->>'replay_id' = $1 ORDER BY 1, 2`, strconv.FormatInt(replayID, 10))
	require.NoError(t, err)
	out := map[string][]string{}
	var id, kind string
	_, err = pgx.ForEachRow(rows, []any{&id, &kind}, func() error {
		out[id] = append(out[id], kind)
		return nil
	})
	require.NoError(t, err)
	return out
}

// requireReplayed asserts that the replay of res created exactly the jobs in
// want (event id -> kinds), that each job's args and metadata name its event
// and the replay, and that its args carry the event's row as it is now.
func (tb *testBundle) requireReplayed(t *testing.T, res *replay.Result, want map[string][]string) {
	t.Helper()
	require.NotZero(t, res.ReplayID)
	total := 0
	for id, kinds := range want {
		sorted := slices.Clone(kinds)
		sort.Strings(sorted)
		want[id] = sorted
		total += len(kinds)
	}
	require.Equal(t, want, tb.replayedKinds(t, res.ReplayID), "jobs of replay %d", res.ReplayID)
	require.Equal(t, len(want), res.Events, "events of replay %d", res.ReplayID)
	require.Equal(t, total, res.Jobs, "jobs of replay %d", res.ReplayID)

	ctx := context.Background()
	rows, err := tb.DB.Pool.Query(ctx, `SELECT j.kind, j.state::text, j.args::text, j.metadata::text, e.name, row_to_json(e)::text
		FROM `+tb.DB.Schema+`.river_job j JOIN `+tb.DB.Events()+` e ON e.id::text = j.args->>'event_id'
		WHERE j.metadata->'notified'->>'replay_id' = $1`, strconv.FormatInt(res.ReplayID, 10))
	require.NoError(t, err)
	n := 0
	var kind, state, args, meta, name, row string
	_, err = pgx.ForEachRow(rows, []any{&kind, &state, &args, &meta, &name, &row}, func() error {
		n++
		var p jobs.Payload
		require.NoError(t, json.Unmarshal([]byte(args), &p))
		require.Equal(t, name, p.EventName, "event name in args of %s job %s", kind, args)
		require.Equal(t, tb.DB.Channel, p.Channel, "channel in args of %s job", kind)
		require.Contains(t, want, p.EventID)
		require.JSONEq(t, row, string(p.Data), "data of %s job of event %s", kind, p.EventID)
		require.JSONEq(t, fmt.Sprintf(`{"notified": {"event_id": %q, "event_name": %q, "channel": %q, "replay_id": %d}}`,
			p.EventID, name, tb.DB.Channel, res.ReplayID), meta, "metadata of %s job of event %s", kind, p.EventID)
		require.Equal(t, "available", state)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, total, n, "replayed jobs whose event row exists")
}

// replayRecord is one row of notified_replay.
type replayRecord struct {
	Channel     string
	RequestedBy string
	Reason      string
	Selector    string
	Handlers    []string
	Events      int
	Jobs        int
	Skipped     int
	Finished    bool
}

func (tb *testBundle) replayRecord(t *testing.T, id int64) replayRecord {
	t.Helper()
	var r replayRecord
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT channel, requested_by, reason, selector::text, handlers,
			events, jobs, skipped, finished_at IS NOT NULL AND finished_at >= started_at
		FROM `+tb.DB.Schema+`.notified_replay WHERE id = $1`, id).
		Scan(&r.Channel, &r.RequestedBy, &r.Reason, &r.Selector, &r.Handlers, &r.Events, &r.Jobs, &r.Skipped, &r.Finished))
	return r
}

// requireRecord asserts the replay's record, its selector as JSON.
func (tb *testBundle) requireRecord(t *testing.T, res *replay.Result, opts replay.Options, selector string) {
	t.Helper()
	r := tb.replayRecord(t, res.ReplayID)
	require.JSONEq(t, selector, r.Selector, "selector of replay %d", res.ReplayID)
	r.Selector = ""
	var handlers []string
	if len(opts.Handlers) > 0 {
		handlers = opts.Handlers
	}
	require.Equal(t, replayRecord{Channel: tb.DB.Channel, RequestedBy: opts.RequestedBy, Reason: opts.Reason, Handlers: handlers,
		Events: res.Events, Jobs: res.Jobs, Skipped: res.SkippedCount, Finished: true}, r)
}

// jobID returns the id of the job of kind that dispatch created for event id.
func (tb *testBundle) jobID(t *testing.T, eventID, kind string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT id FROM `+tb.DB.Schema+`.river_job
		WHERE args->>'event_id' = $1 AND kind = $2 AND NOT metadata->'notified' ? 'replay_id'`, eventID, kind).Scan(&id))
	return id
}

func (tb *testBundle) count(t *testing.T, table string) int {
	t.Helper()
	return testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+"."+table)
}

// opts returns replay options with a reason and requester.
func replayOpts(reason string) replay.Options {
	return replay.Options{Reason: reason, RequestedBy: "tester@host"}
}

func TestReplayByIDs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k1")
	tb.Route(t, "a", "k2")
	tb.Route(t, "b", "k1")
	ids := tb.InsertEvents(t, "a", "b", "a", "b", "a", "b", "a", "b")
	require.Equal(t, "7", ids[6])
	tb.dispatchAndStop(t, len(ids))
	require.Equal(t, 12, tb.count(t, "river_job"))
	// The row is read again: the replayed job carries its data as it is now.
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Events()+` SET payload = '{"n": "changed"}' WHERE id = 2`)

	opts := replayOpts("handler k1 was broken")
	// "007" is id 7; 99 was never recorded, so it is not selected.
	sel := replay.Selector{IDs: []string{"007", "2", "99"}}
	res := tb.replay(t, sel, opts)
	require.Equal(t, 2, res.Selected)
	require.Equal(t, []replay.PlannedEvent{
		{EventID: "2", EventName: "b", Handlers: []string{"k1"}},
		{EventID: "7", EventName: "a", Handlers: []string{"k1", "k2"}},
	}, res.Planned)
	require.Empty(t, res.Skipped)
	require.Zero(t, res.SkippedCount)
	require.False(t, res.DryRun)
	tb.requireReplayed(t, res, map[string][]string{"2": {"k1"}, "7": {"k1", "k2"}})
	tb.requireRecord(t, res, opts, `{"ids": ["007", "2", "99"]}`)
	require.Equal(t, 15, tb.count(t, "river_job"))

	var data string
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT args->'data'->>'payload' FROM `+tb.DB.Schema+`.river_job
		WHERE metadata->'notified'->>'replay_id' = $1 AND args->>'event_id' = '2'`, strconv.FormatInt(res.ReplayID, 10)).Scan(&data))
	require.JSONEq(t, `{"n": "changed"}`, data)
}

func TestReplayByIDRange(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	names := make([]string, 12)
	for i := range names {
		names[i] = "a"
	}
	ids := tb.InsertEvents(t, names...)
	require.Equal(t, "12", ids[11])
	tb.dispatchAndStop(t, len(ids))

	want := func(from, to int) map[string][]string {
		m := map[string][]string{}
		for i := from; i <= to; i++ {
			m[strconv.Itoa(i)] = []string{"k"}
		}
		return m
	}
	// Both bounds inclusive, in the column's (numeric, not text) order.
	opts := replayOpts("range")
	res := tb.replay(t, replay.Selector{FromID: "2", ToID: "10"}, opts)
	require.Equal(t, 9, res.Selected)
	tb.requireReplayed(t, res, want(2, 10))
	tb.requireRecord(t, res, opts, `{"from_id": "2", "to_id": "10"}`)

	// One bound only; a bound is parsed as an id too.
	res = tb.replay(t, replay.Selector{FromID: "011"}, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, want(11, 12))
	res = tb.replay(t, replay.Selector{ToID: "3"}, opts)
	require.Equal(t, 3, res.Selected)
	tb.requireReplayed(t, res, want(1, 3))

	// An event whose row is gone is not selected by a range.
	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = 12")
	res = tb.replay(t, replay.Selector{FromID: "11"}, opts)
	require.Equal(t, 1, res.Selected)
	require.Zero(t, res.SkippedCount)
	tb.requireReplayed(t, res, want(11, 11))
}

func TestReplayByNames(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, n := range []string{"a", "b", "c"} {
		tb.Route(t, n, "k_"+n)
	}
	ids := tb.InsertEvents(t, "a", "b", "c", "a")
	tb.dispatchAndStop(t, len(ids))

	opts := replayOpts("names")
	res := tb.replay(t, replay.Selector{Names: []string{"a", "c", "nothing"}}, opts)
	require.Equal(t, 3, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k_a"}, ids[2]: {"k_c"}, ids[3]: {"k_a"}})
	tb.requireRecord(t, res, opts, `{"names": ["a", "c", "nothing"]}`)
}

func TestReplayBySinceUntil(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a", "a", "a", "a")
	tb.dispatchAndStop(t, len(ids))
	// Dispatched 3h, 2h and 1h ago, and now.
	base := time.Now().UTC().Truncate(time.Second).Add(-3 * time.Hour)
	for i, id := range ids[:3] {
		testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".notified_dispatch SET dispatched_at = $1 WHERE event_id = $2",
			base.Add(time.Duration(i)*time.Hour), id)
	}

	// Since <= t < Until.
	opts := replayOpts("window")
	since, until := base.Add(time.Hour), base.Add(2*time.Hour)
	res := tb.replay(t, replay.Selector{Since: since, Until: until}, opts)
	require.Equal(t, 1, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[1]: {"k"}})
	tb.requireRecord(t, res, opts, fmt.Sprintf(`{"since": %q, "until": %q}`, since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano)))

	res = tb.replay(t, replay.Selector{Since: until}, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[2]: {"k"}, ids[3]: {"k"}})

	res = tb.replay(t, replay.Selector{Until: since}, opts)
	require.Equal(t, 1, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k"}})
}

func TestReplayByOutcomes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a", "u", "a")
	tb.dispatchAndStop(t, len(ids))
	require.Equal(t, "unrouted", tb.Outcomes(t)[ids[1]].Outcome)

	opts := replayOpts("outcomes")
	res := tb.replay(t, replay.Selector{Outcomes: []string{"dispatched"}}, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k"}, ids[2]: {"k"}})
	tb.requireRecord(t, res, opts, `{"outcomes": ["dispatched"]}`)

	// Still no route for the unrouted event: it is selected and skipped,
	// and as nothing is enqueued, nothing is recorded.
	res, nothing := tb.replayNothing(t, replay.Selector{Outcomes: []string{"unrouted"}}, opts)
	require.Equal(t, 1, res.Selected)
	require.Equal(t, []replay.SkippedEvent{{EventID: ids[1], Cause: replay.SkipNoRoute, Reason: `no route for event name "u"`}}, res.Skipped)
	require.Equal(t, map[replay.SkipCause]int{replay.SkipNoRoute: 1}, nothing.Skipped)
	require.EqualError(t, nothing, "nothing to replay: all 1 selected events were skipped (no_route 1)")
}

func TestReplayByJobStatesSelectsNewestJobOfHandler(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.Route(t, "a", "k1")
	tb.Route(t, "a", "k2")
	ids := tb.InsertEvents(t, "a", "a", "a")
	tb.dispatchAndStop(t, len(ids))

	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{Schema: tb.DB.Schema})
	require.NoError(t, err)
	// Event 1: its k1 job is cancelled.
	cancelled, err := client.JobCancel(ctx, tb.jobID(t, ids[0], "k1"))
	require.NoError(t, err)
	require.Equal(t, "cancelled", string(cancelled.State))
	// Event 2: its k2 job is discarded.
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".river_job SET state = 'discarded', finalized_at = now() WHERE id = $1",
		tb.jobID(t, ids[1], "k2"))
	// Event 3: its k1 job is cancelled, and River's cleaner has deleted it
	// since: only notified_job remembers it.
	gone := tb.jobID(t, ids[2], "k1")
	_, err = client.JobCancel(ctx, gone)
	require.NoError(t, err)
	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Schema+".river_job WHERE id = $1", gone)
	require.Equal(t, 3, tb.count(t, "notified_job"))

	// Only the jobs of the chosen handlers count.
	discarded := replay.Selector{JobStates: []string{"discarded"}}
	tb.replayNothing(t, discarded, replay.Options{DryRun: true, Handlers: []string{"k1"}})

	opts := replayOpts("k1 fixed")
	opts.Handlers = []string{"k1"}
	cancelledSel := replay.Selector{JobStates: []string{"cancelled"}}
	res := tb.replay(t, cancelledSel, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k1"}, ids[2]: {"k1"}})
	tb.requireRecord(t, res, opts, `{"job_states": ["cancelled"]}`)

	// Their newest k1 job is now the replayed one, which is available.
	tb.replayNothing(t, cancelledSel, replay.Options{DryRun: true, Handlers: []string{"k1"}})
	tb.replayNothing(t, cancelledSel, opts)

	// Without Handlers, any handler's newest job counts and the event is
	// replayed for all its routes.
	opts = replayOpts("k2 fixed")
	res = tb.replay(t, discarded, opts)
	require.Equal(t, 1, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[1]: {"k1", "k2"}})
	tb.replayNothing(t, discarded, replay.Options{DryRun: true})
}

func TestReplayByJobsReplaysOnlyTheirKinds(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, k := range []string{"k1", "k2", "k3"} {
		tb.Route(t, "a", k)
	}
	ids := tb.InsertEvents(t, "a", "a", "a")
	tb.dispatchAndStop(t, len(ids))

	j1, j2, j3 := tb.jobID(t, ids[0], "k1"), tb.jobID(t, ids[0], "k3"), tb.jobID(t, ids[1], "k2")
	opts := replayOpts("dead letters")
	sel := replay.Selector{Jobs: []int64{j1, j2, j3, 999999}}
	res := tb.replay(t, sel, opts)
	require.Equal(t, 2, res.Selected)
	require.Equal(t, []replay.PlannedEvent{
		{EventID: ids[0], EventName: "a", Handlers: []string{"k1", "k3"}},
		{EventID: ids[1], EventName: "a", Handlers: []string{"k2"}},
	}, res.Planned)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k1", "k3"}, ids[1]: {"k2"}})
	tb.requireRecord(t, res, opts, fmt.Sprintf(`{"jobs": [%d, %d, %d, 999999]}`, j1, j2, j3))
}

func TestReplaySelectorsCombineWithAND(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	tb.Route(t, "b", "k")
	ids := tb.InsertEvents(t, "a", "b", "a", "b", "a", "b")
	require.Equal(t, "6", ids[5])
	tb.dispatchAndStop(t, len(ids))
	cutoff := time.Now().Add(-time.Hour)
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Schema+".notified_dispatch SET dispatched_at = now() - interval '2 hours' WHERE event_id IN ('1', '2')")
	client, err := river.NewClient(riverpgxv5.New(tb.DB.Pool), &river.Config{Schema: tb.DB.Schema})
	require.NoError(t, err)
	for _, id := range []string{"2", "3"} {
		_, err := client.JobCancel(context.Background(), tb.jobID(t, id, "k"))
		require.NoError(t, err)
	}

	for _, c := range []struct {
		name string
		sel  replay.Selector
		want []string
	}{
		{"names and from", replay.Selector{Names: []string{"a"}, FromID: "2"}, []string{"3", "5"}},
		{"ids and names", replay.Selector{IDs: []string{"1", "2", "3"}, Names: []string{"b"}}, []string{"2"}},
		{"names and since", replay.Selector{Names: []string{"a"}, Since: cutoff}, []string{"3", "5"}},
		{"range and until", replay.Selector{FromID: "2", ToID: "5", Until: cutoff}, []string{"2"}},
		{"job state and names", replay.Selector{JobStates: []string{"cancelled"}, Names: []string{"a"}}, []string{"3"}},
	} {
		require.Equal(t, c.want, tb.dryRun(t, c.sel, replay.Options{}), c.name)
	}
	tb.replayNothing(t, replay.Selector{Names: []string{"a"}, Outcomes: []string{"unrouted"}}, replay.Options{DryRun: true})
}

func TestReplayDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k1")
	tb.Route(t, "a", "k2")
	tb.Route(t, "b", "k1")
	ids := tb.InsertEvents(t, "a", "b", "a", "none")
	require.Equal(t, []string{"1", "2", "3", "4"}, ids)
	tb.dispatchAndStop(t, len(ids))

	snapshot := func() string {
		var s string
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM `+tb.DB.Schema+`.river_job)::text || ' jobs, ' ||
			(SELECT count(*) FROM `+tb.DB.Schema+`.notified_replay)::text || ' replays, ' ||
			(SELECT string_agg(d::text, '; ' ORDER BY event_id) FROM `+tb.DB.Schema+`.notified_dispatch d)`).Scan(&s))
		return s
	}
	before := snapshot()
	require.Equal(t, 5, tb.count(t, "river_job"))

	var progress []replay.Progress
	sel := replay.Selector{Names: []string{"a", "b", "none"}}
	// No reason needed for a dry run.
	res, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, sel, replay.Options{DryRun: true,
		Progress: func(p replay.Progress) { progress = append(progress, p) }})
	require.NoError(t, err)
	res.Took = 0
	require.Equal(t, &replay.Result{FiltersApplied: true,
		DryRun:        true,
		Selected:      4,
		Events:        3,
		Jobs:          5,
		JobsByHandler: map[string]int{"k1": 3, "k2": 2},
		Planned: []replay.PlannedEvent{
			{EventID: "1", EventName: "a", Handlers: []string{"k1", "k2"}},
			{EventID: "2", EventName: "b", Handlers: []string{"k1"}},
			{EventID: "3", EventName: "a", Handlers: []string{"k1", "k2"}},
		},
		Skipped:        []replay.SkippedEvent{{EventID: "4", Cause: replay.SkipNoRoute, Reason: `no route for event name "none"`}},
		SkippedCount:   1,
		SkippedByCause: map[replay.SkipCause]int{replay.SkipNoRoute: 1},
	}, res)
	require.Equal(t, []replay.Progress{{Selected: 4, Done: 4, Jobs: 5, Skipped: 1}}, progress)
	require.Equal(t, before, snapshot())

	// PlanLimit caps the lists, not the counts.
	res = tb.replay(t, sel, replay.Options{DryRun: true, PlanLimit: 1, Handlers: []string{"k2"}})
	require.Equal(t, 4, res.Selected)
	require.Equal(t, 2, res.Events)
	require.Equal(t, 2, res.Jobs)
	require.Equal(t, []replay.PlannedEvent{{EventID: "1", EventName: "a", Handlers: []string{"k2"}}}, res.Planned)
	require.Equal(t, []replay.SkippedEvent{{EventID: "2", Cause: replay.SkipNoRoute, Reason: `event name "b" has no route to the chosen handlers`}}, res.Skipped)
	require.Equal(t, 2, res.SkippedCount)
	require.Equal(t, map[replay.SkipCause]int{replay.SkipNoRoute: 2}, res.SkippedByCause)
	require.Equal(t, map[string]int{"k2": 2}, res.JobsByHandler)
	require.Equal(t, before, snapshot())
}

func TestReplayUnroutedEventGetsRouteAddedSince(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	ids := tb.InsertEvents(t, "signup")
	tb.dispatchAndStop(t, len(ids))
	require.Zero(t, tb.count(t, "river_job"))

	dispatchRow := func() string {
		var s string
		require.NoError(t, tb.DB.Pool.QueryRow(ctx, `SELECT d::text FROM `+tb.DB.Schema+`.notified_dispatch d WHERE event_id = $1`, ids[0]).Scan(&s))
		return s
	}
	before := dispatchRow()
	require.Equal(t, bridgetest.Outcome{Outcome: "unrouted", Reason: `no route for event name "signup"`, Name: "signup"}, tb.Outcomes(t)[ids[0]])

	require.NoError(t, routes.NewStore(tb.DB.Pool, tb.DB.Schema).Add(ctx,
		routes.Route{Event: "signup", Kind: "send_welcome", Queue: "mail", Priority: 2, MaxAttempts: 5}))
	opts := replayOpts("route added")
	res := tb.replay(t, replay.Selector{IDs: ids}, opts)
	require.Equal(t, 1, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"send_welcome"}})
	tb.requireRecord(t, res, opts, fmt.Sprintf(`{"ids": [%q]}`, ids[0]))

	var queue string
	var priority, maxAttempts int
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, `SELECT queue, priority, max_attempts FROM `+tb.DB.Schema+`.river_job`).
		Scan(&queue, &priority, &maxAttempts))
	require.Equal(t, []any{"mail", 2, 5}, []any{queue, priority, maxAttempts})
	// The dispatch record still says what happened when the event arrived.
	require.Equal(t, before, dispatchRow())
}

func TestReplayHandlersLimitJobKinds(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, k := range []string{"k1", "k2", "k3"} {
		tb.Route(t, "a", k)
	}
	tb.Route(t, "b", "k3")
	ids := tb.InsertEvents(t, "a", "b")
	tb.dispatchAndStop(t, len(ids))

	opts := replayOpts("only k1 and k2")
	opts.Handlers = []string{"k1", "k2"}
	res := tb.replay(t, replay.Selector{Names: []string{"a", "b"}}, opts)
	require.Equal(t, 2, res.Selected)
	require.Equal(t, []replay.SkippedEvent{{EventID: ids[1], Cause: replay.SkipNoRoute, Reason: `event name "b" has no route to the chosen handlers`}}, res.Skipped)
	require.Equal(t, 1, res.SkippedCount)
	require.Equal(t, map[string]int{"k1": 1, "k2": 1}, res.JobsByHandler)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k1", "k2"}})
	tb.requireRecord(t, res, opts, `{"names": ["a", "b"]}`)
}

func TestReplaySkipsEventsItCannotReplay(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.Route(t, "a", "k")
	deleted := tb.InsertEvents(t, "a")[0]
	var nullName string
	require.NoError(t, tb.DB.Pool.QueryRow(ctx, "INSERT INTO "+tb.DB.Events()+" (name) VALUES (NULL) RETURNING id::text").Scan(&nullName))
	nulledSince := tb.InsertEvents(t, "a")[0]
	ok := tb.InsertEvents(t, "a")[0]
	require.Equal(t, []string{"1", "2", "3", "4"}, []string{deleted, nullName, nulledSince, ok})
	// Hand-sent: a payload that is not an id, and an id without a row.
	tb.dispatchAndStop(t, 6, "abc", "424242")
	out := tb.Outcomes(t)
	require.Equal(t, "rejected", out["abc"].Outcome)
	require.Equal(t, "missing", out["424242"].Outcome)
	require.Equal(t, "rejected", out[nullName].Outcome)

	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = $1", deleted)
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Events()+" SET name = NULL WHERE id = $1", nulledSince)

	opts := replayOpts("skips")
	res := tb.replay(t, replay.Selector{IDs: []string{deleted, nullName, nulledSince, ok}}, opts)
	require.Equal(t, 4, res.Selected)
	require.Equal(t, []replay.SkippedEvent{
		{EventID: deleted, Cause: replay.SkipNoRow, Reason: "no row in " + tb.DB.Events() + " with id = 1"},
		{EventID: nullName, Cause: replay.SkipNullName, Reason: "name column name is NULL"},
		{EventID: nulledSince, Cause: replay.SkipNullName, Reason: "name column name is NULL"},
	}, res.Skipped)
	require.Equal(t, 3, res.SkippedCount)
	require.Equal(t, map[replay.SkipCause]int{replay.SkipNoRow: 1, replay.SkipNullName: 2}, res.SkippedByCause)
	tb.requireReplayed(t, res, map[string][]string{ok: {"k"}})
	tb.requireRecord(t, res, opts, `{"ids": ["1", "2", "3", "4"]}`)

	// Every event skipped: nothing is enqueued, nothing recorded. Payloads
	// that are not ids come first, then ids in order.
	res, nothing := tb.replayNothing(t, replay.Selector{Outcomes: []string{"rejected", "missing"}}, opts)
	require.Equal(t, 3, res.Selected)
	require.Equal(t, []replay.SkippedEvent{
		{EventID: "abc", Cause: replay.SkipInvalidID, Reason: `not a valid id: payload "abc" is not a valid bigint id`},
		{EventID: nullName, Cause: replay.SkipNullName, Reason: "name column name is NULL"},
		{EventID: "424242", Cause: replay.SkipNoRow, Reason: "no row in " + tb.DB.Events() + " with id = 424242"},
	}, res.Skipped)
	require.EqualError(t, nothing, "nothing to replay: all 3 selected events were skipped (invalid_id 1, no_row 1, null_name 1)")
}

func TestReplaySkipsEmptyPayloadRecordedAsRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.dispatchAndStop(t, 1, "")
	require.Equal(t, "rejected", tb.Outcomes(t)[""].Outcome)

	var progress []replay.Progress
	opts := replayOpts("empty")
	opts.Progress = func(p replay.Progress) { progress = append(progress, p) }
	res, _ := tb.replayNothing(t, replay.Selector{Outcomes: []string{"rejected"}}, opts)
	require.Equal(t, 1, res.Selected)
	require.Equal(t, []replay.SkippedEvent{{EventID: "", Cause: replay.SkipInvalidID, Reason: `not a valid id: payload "" is not a valid bigint id`}}, res.Skipped)
	require.Equal(t, []replay.Progress{{Selected: 1, Done: 1, Skipped: 1}}, progress)
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a")
	tb.dispatchAndStop(t, len(ids))
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	names := replay.Selector{Names: []string{"a"}}
	badCfg := tb.Config
	badCfg.BatchSize = 20000
	noTable := tb.Config
	noTable.Table = tb.DB.Schema + ".nope"

	for _, c := range []struct {
		name string
		cfg  *bridge.Config
		sel  replay.Selector
		opts replay.Options
		err  string
		is   error
	}{
		{name: "empty selector", opts: replayOpts("r"), is: replay.ErrNothingSelected,
			err: "no events selected: choose events by id, id range, name, time, outcome, job state or job"},
		{name: "empty selector in dry run", opts: replay.Options{DryRun: true}, is: replay.ErrNothingSelected,
			err: "no events selected: choose events by id, id range, name, time, outcome, job state or job"},
		{name: "no reason", sel: names, opts: replay.Options{Reason: " \t"}, is: replay.ErrNoReason,
			err: "a replay needs a reason, for the record: set Options.Reason (not needed for a DryRun)"},
		{name: "bad outcome", sel: replay.Selector{Outcomes: []string{"unrouted", "lost"}}, opts: replayOpts("r"),
			err: `outcome "lost" is not one of dispatched, unrouted, missing, rejected`},
		{name: "bad job state", sel: replay.Selector{JobStates: []string{"failed"}}, opts: replayOpts("r"),
			err: `job state "failed" is not one of available, cancelled, completed, discarded, pending, retryable, running, scheduled`},
		{name: "since equals until", sel: replay.Selector{Since: day, Until: day}, opts: replayOpts("r"),
			err: "time range is empty: since 2024-01-02T00:00:00Z is not before until 2024-01-02T00:00:00Z"},
		{name: "since after until", sel: replay.Selector{Since: day.Add(time.Hour), Until: day}, opts: replayOpts("r"),
			err: "time range is empty: since 2024-01-02T01:00:00Z is not before until 2024-01-02T00:00:00Z"},
		{name: "invalid id", sel: replay.Selector{IDs: []string{"1", "abc"}}, opts: replayOpts("r"),
			err: `Selector.IDs: payload "abc" is not a valid bigint id`},
		{name: "invalid from id", sel: replay.Selector{FromID: "x1"}, opts: replayOpts("r"),
			err: `Selector.FromID: payload "x1" is not a valid bigint id`},
		{name: "out of range to id", sel: replay.Selector{ToID: "99999999999999999999"}, opts: replayOpts("r"),
			err: `Selector.ToID: payload "99999999999999999999" is out of range for id column type bigint`},
		{name: "bad config", cfg: &badCfg, sel: names, opts: replayOpts("r"),
			err: "BatchSize 20000 is out of range: use 1 to 10000"},
		{name: "no events table", cfg: &noTable, sel: names, opts: replayOpts("r"), is: bridge.ErrTableNotFound},
	} {
		cfg := tb.Config
		if c.cfg != nil {
			cfg = *c.cfg
		}
		res, err := replay.Run(context.Background(), tb.DB.Pool, cfg, c.sel, c.opts)
		require.Error(t, err, c.name)
		require.Nil(t, res, c.name)
		if c.err != "" {
			require.EqualError(t, err, c.err, c.name)
		}
		if c.is != nil {
			require.ErrorIs(t, err, c.is, c.name)
		}
		if strings.HasPrefix(c.err, "Selector.") {
			var selErr *replay.SelectorError
			require.ErrorAs(t, err, &selErr, c.name)
			require.Equal(t, strings.TrimPrefix(strings.Split(c.err, ":")[0], "Selector."), selErr.Field, c.name)
		}
	}
	require.Zero(t, tb.count(t, "notified_replay"))
	require.Equal(t, 1, tb.count(t, "river_job"))
}

func TestReplayUnmigratedSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true})
	cfg := bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel, Logger: bridgetest.Logger(t)}
	res, err := replay.Run(context.Background(), db.Pool, cfg, replay.Selector{Names: []string{"a"}}, replayOpts("r"))
	require.Nil(t, res)
	require.ErrorIs(t, err, migrations.ErrNotMigrated)
	require.EqualError(t, err, fmt.Sprintf("%s in schema %s (version 0, want %d): run `notified-bridge migrate --schema %s` first",
		migrations.ErrNotMigrated, db.Schema, migrations.Latest(), db.Schema))
}

func TestReplayInBatchesReportsProgress(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	names := make([]string, 10)
	for i := range names {
		names[i] = "a"
	}
	ids := tb.InsertEvents(t, names...)
	tb.dispatchAndStop(t, len(ids))
	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = 5")

	var progress []replay.Progress
	opts := replayOpts("batches")
	opts.BatchSize = 3
	opts.Progress = func(p replay.Progress) { progress = append(progress, p) }
	res := tb.replay(t, replay.Selector{Names: []string{"a"}}, opts)
	require.Equal(t, 10, res.Selected)
	require.Equal(t, 1, res.SkippedCount)
	// Events go in the order of their ids, as numbers: 1, 2, 3 | 4, 5, 6 | 7, 8, 9 | 10.
	require.Equal(t, []replay.Progress{
		{Selected: 10, Done: 3, Jobs: 3},
		{Selected: 10, Done: 6, Jobs: 5, Skipped: 1},
		{Selected: 10, Done: 9, Jobs: 8, Skipped: 1},
		{Selected: 10, Done: 10, Jobs: 9, Skipped: 1},
	}, progress)
	want := map[string][]string{}
	for _, id := range ids {
		if id != "5" {
			want[id] = []string{"k"}
		}
	}
	tb.requireReplayed(t, res, want)
	tb.requireRecord(t, res, opts, `{"names": ["a"]}`)
	require.Equal(t, replayRecord{Channel: tb.DB.Channel, RequestedBy: "tester@host", Reason: "batches",
		Events: 9, Jobs: 9, Skipped: 1, Finished: true, Selector: `{"names": ["a"]}`}, tb.replayRecord(t, res.ReplayID))
}

func TestReplayIsInHistory(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a")
	tb.dispatchAndStop(t, len(ids))

	res := tb.replay(t, replay.Selector{IDs: ids}, replay.Options{Reason: "handler bug fixed", RequestedBy: "ana@laptop"})
	ev, err := history.NewStore(tb.DB.Pool, tb.DB.Schema).Event(context.Background(), tb.DB.Channel, ids[0])
	require.NoError(t, err)
	require.Equal(t, "dispatched", ev.Outcome)
	require.Len(t, ev.Jobs, 2)
	first, replayed := ev.Jobs[0], ev.Jobs[1]
	require.Equal(t, "k", first.Handler)
	require.Nil(t, first.ReplayID)
	require.Nil(t, first.ReplayReason)
	require.Nil(t, first.ReplayedBy)
	require.Equal(t, "k", replayed.Handler)
	require.Equal(t, "available", replayed.State)
	require.Greater(t, replayed.ID, first.ID)
	require.NotNil(t, replayed.ReplayID)
	require.Equal(t, res.ReplayID, *replayed.ReplayID)
	require.NotNil(t, replayed.ReplayReason)
	require.Equal(t, "handler bug fixed", *replayed.ReplayReason)
	require.NotNil(t, replayed.ReplayedBy)
	require.Equal(t, "ana@laptop", *replayed.ReplayedBy)
}

func TestReplayUUIDIDs(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" (id uuid PRIMARY KEY, name text, payload jsonb)")
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	tb := &testBundle{&bridgetest.Bundle{DB: db, Config: bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
		PollInterval: 200 * time.Millisecond, MissingGrace: 300 * time.Millisecond, Logger: bridgetest.Logger(t)}}}
	tb.Route(t, "e", "k")
	ids := []string{"0a0eebc9-9c0b-4ef8-bb6d-6bb9bd380a11", "5a0eebc9-9c0b-4ef8-bb6d-6bb9bd380a11", "aa0eebc9-9c0b-4ef8-bb6d-6bb9bd380a11"}
	testdb.Exec(t, db.Pool, "INSERT INTO "+db.Events()+" (id, name) SELECT u, 'e' FROM unnest($1::uuid[]) AS u", ids)
	tb.dispatchAndStop(t, len(ids))

	// Ids in another spelling select the recorded (lower-case) key.
	opts := replayOpts("uuid")
	res := tb.replay(t, replay.Selector{IDs: []string{"{5A0EEBC9-9C0B-4EF8-BB6D-6BB9BD380A11}"}}, opts)
	require.Equal(t, 1, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[1]: {"k"}})

	res = tb.replay(t, replay.Selector{FromID: "5A0EEBC99C0B4EF8BB6D6BB9BD380A11"}, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[1]: {"k"}, ids[2]: {"k"}})

	res = tb.replay(t, replay.Selector{FromID: ids[0], ToID: "5a0eebc9-9c0b-4ef8-bb6d-6bb9bd380a11"}, opts)
	require.Equal(t, 2, res.Selected)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k"}, ids[1]: {"k"}})

	_, err = replay.Run(context.Background(), db.Pool, tb.Config, replay.Selector{IDs: []string{"5a0eebc9"}}, opts)
	require.EqualError(t, err, `Selector.IDs: payload "5a0eebc9" is not a valid uuid id`)
}

// recordHistory loads one event per id, named name, straight into the
// events table (whose id column has type idType) and notified_dispatch as
// dispatched: the way a long history arrives, in bulk, with the capture
// trigger off and no ANALYZE since.
func (tb *testBundle) recordHistory(t *testing.T, idType, name string, ids []string) {
	t.Helper()
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Events()+" DISABLE TRIGGER USER")
	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+tb.DB.Events()+" (id, name) SELECT i::"+idType+", $2 FROM unnest($1::text[]) AS i", ids, name)
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Events()+" ENABLE TRIGGER USER")
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_dispatch (channel, event_id, event_name, outcome, notified_at)
		SELECT $1, e.id::text, e.name, 'dispatched', now() FROM `+tb.DB.Events()+` e WHERE e.id::text = ANY($2::text[])`, tb.DB.Channel, ids)
}

// setupIDType is a schema whose events table's id column has type idType.
func setupIDType(t *testing.T, idType string) *testBundle {
	t.Helper()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})
	testdb.Exec(t, db.Pool, "CREATE TABLE "+db.Events()+" (id "+idType+" PRIMARY KEY, name text, payload jsonb)")
	_, err := trigger.Install(context.Background(), db.Pool, trigger.Options{Schema: db.Schema, Table: db.Events(), Channel: db.Channel})
	require.NoError(t, err)
	return &testBundle{&bridgetest.Bundle{DB: db, Config: bridge.Config{Schema: db.Schema, Table: db.Events(), Channel: db.Channel,
		PollInterval: 200 * time.Millisecond, MissingGrace: 300 * time.Millisecond, Logger: bridgetest.Logger(t)}}}
}

func TestReplayIDRangeComparesIDsAsTheirType(t *testing.T) {
	t.Parallel()
	type rangeCase struct {
		from, to string
		want     []string // in the order replay goes, the column's
	}
	for _, c := range []struct {
		idType string
		ids    []string
		ranges []rangeCase
	}{
		// As text, "9" sorts after "11": a range compared as text selects
		// nothing from 9 to 11, and 10 and 11 from 10 to 9.
		{"smallint", []string{"-1", "0", "1", "8", "9", "10", "11", "12", "32767"}, []rangeCase{
			{"9", "11", []string{"9", "10", "11"}},
			{"-1", "1", []string{"-1", "0", "1"}},
			{"11", "", []string{"11", "12", "32767"}},
			{"", "0", []string{"-1", "0"}},
		}},
		{"integer", []string{"8", "9", "10", "11", "100", "2147483647"}, []rangeCase{
			{"9", "11", []string{"9", "10", "11"}},
			{"10", "2147483647", []string{"10", "11", "100", "2147483647"}},
		}},
		{"bigint", []string{"8", "9", "10", "11", "4294967295", "4294967296", "4294967297", "9223372036854775806", "9223372036854775807"}, []rangeCase{
			{"9", "11", []string{"9", "10", "11"}},
			{"4294967296", "9223372036854775806", []string{"4294967296", "4294967297", "9223372036854775806"}},
			{"9223372036854775807", "", []string{"9223372036854775807"}},
		}},
		// Text ids keep text's order: "10" <= "11" <= "12" <= "8" <= "9".
		{"text", []string{"8", "9", "10", "11", "12"}, []rangeCase{
			{"10", "11", []string{"10", "11"}},
			{"11", "8", []string{"11", "12", "8"}},
		}},
		{"varchar(20)", []string{"8", "9", "10", "11", "12"}, []rangeCase{
			{"10", "8", []string{"10", "11", "12", "8"}},
		}},
	} {
		t.Run(strings.Fields(strings.ReplaceAll(c.idType, "(", " "))[0], func(t *testing.T) {
			t.Parallel()
			tb := setupIDType(t, c.idType)
			tb.Route(t, "a", "k")
			tb.recordHistory(t, c.idType, "a", c.ids)
			for _, rc := range c.ranges {
				require.Equal(t, rc.want, tb.dryRun(t, replay.Selector{FromID: rc.from, ToID: rc.to}, replay.Options{}),
					"%s from %q to %q", c.idType, rc.from, rc.to)
			}
			if c.idType == "text" {
				// 9 > 11 as text: an empty range, and nothing to replay.
				tb.replayNothing(t, replay.Selector{FromID: "9", ToID: "11"}, replayOpts("text range"))
			}
			want := map[string][]string{}
			for _, id := range c.ranges[0].want {
				want[id] = []string{"k"}
			}
			res := tb.replay(t, replay.Selector{FromID: c.ranges[0].from, ToID: c.ranges[0].to}, replayOpts("range"))
			tb.requireReplayed(t, res, want)
		})
	}

	t.Run("out of the column's range", func(t *testing.T) {
		t.Parallel()
		tb := setupIDType(t, "smallint")
		_, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, replay.Selector{FromID: "1", ToID: "32768"}, replayOpts("r"))
		require.EqualError(t, err, `Selector.ToID: payload "32768" is out of range for id column type smallint`)
	})
}

// TestReplayRangeSnapshotPlan: the snapshot of an id range reads the range
// from the events table's primary key and probes notified_dispatch's primary
// key once per id, right after a bulk load (no statistics) as after ANALYZE:
// it reads in proportion to the range, never the whole dispatch table.
func TestReplayRangeSnapshotPlan(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	const events, from, to = 30_000, 10_001, 11_000
	tb.Route(t, "a", "k")
	testdb.Exec(t, tb.DB.Pool, "ALTER TABLE "+tb.DB.Events()+" DISABLE TRIGGER USER")
	testdb.Exec(t, tb.DB.Pool, "INSERT INTO "+tb.DB.Events()+" (name) SELECT 'a' FROM generate_series(1, $1::int)", events)
	testdb.Exec(t, tb.DB.Pool, `INSERT INTO `+tb.DB.Schema+`.notified_dispatch (channel, event_id, event_name, outcome, notified_at)
		SELECT $1, id::text, name, 'dispatched', now() FROM `+tb.DB.Events(), tb.DB.Channel)
	sql, args, err := replay.SnapshotSQL(ctx, tb.DB.Pool, tb.Config, replay.Selector{FromID: strconv.Itoa(from), ToID: strconv.Itoa(to)})
	require.NoError(t, err)

	for _, analyzed := range []bool{false, true} {
		if analyzed {
			testdb.Exec(t, tb.DB.Pool, "ANALYZE "+tb.DB.Events())
			testdb.Exec(t, tb.DB.Pool, "ANALYZE "+tb.DB.Schema+".notified_dispatch")
		}
		tx, err := tb.DB.Pool.Begin(ctx)
		require.NoError(t, err)
		plan := testdb.Explain(t, tx, sql, args)
		require.NoError(t, tx.Rollback(ctx))
		t.Logf("analyzed %v: %d buffers, %v", analyzed, plan.Buffers, plan.Nodes)
		require.False(t, plan.Nodes["Seq Scan on notified_dispatch"], "analyzed %v: %v", analyzed, plan.Nodes)
		require.False(t, plan.Nodes["Seq Scan on events"], "analyzed %v: %v", analyzed, plan.Nodes)
		require.True(t, plan.Nodes["Index Only Scan on notified_dispatch"] || plan.Nodes["Index Scan on notified_dispatch"],
			"analyzed %v: each id's record is found by its primary key: %v", analyzed, plan.Nodes)
		// A probe is a descent of a B-tree of height 2 or 3 and a heap page.
		require.LessOrEqual(t, plan.Buffers, int64(6*(to-from+1)), "analyzed %v", analyzed)
	}
	res := tb.replay(t, replay.Selector{FromID: strconv.Itoa(from), ToID: strconv.Itoa(to)}, replay.Options{DryRun: true})
	require.Equal(t, to-from+1, res.Selected)
}

// TestReplaySnapshotIgnoresEventsDispatchedDuringIt: a replay works on the
// ids selected when it began. Events dispatched while it runs, though they
// match its selector, are neither replayed nor counted, and an event deleted
// meanwhile is counted as skipped: its figures add up.
func TestReplaySnapshotIgnoresEventsDispatchedDuringIt(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	tb.Route(t, "a", "k1")
	tb.Route(t, "a", "k2")
	tb.Start(t, nil, tb.Config)
	named := func(n int) []string { return strings.Split(strings.Repeat("a", n), "") }
	before := tb.InsertEvents(t, named(40)...)
	tb.WaitRecorded(t, len(before))

	// A producer inserts events named a all along; the running bridge
	// dispatches them.
	stop := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				produced <- nil
				return
			case <-tick.C:
				if _, err := tb.DB.Pool.Exec(ctx, "INSERT INTO "+tb.DB.Events()+" (name) VALUES ('a')"); err != nil {
					produced <- err
					return
				}
			}
		}
	}()

	var progress []replay.Progress
	var deleted string
	opts := replayOpts("while dispatching")
	opts.BatchSize = 10
	opts.Progress = func(p replay.Progress) {
		progress = append(progress, p)
		if len(progress) > 1 {
			return
		}
		// After the first batch: 20 more events, dispatched before the next
		// batch starts, and the row of an event not replayed yet deleted.
		extra := tb.InsertEvents(t, named(20)...)
		testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
			n := testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_dispatch WHERE event_id = ANY($1)", extra)
			return n == len(extra), fmt.Sprintf("%d of %d recorded", n, len(extra))
		})
		deleted = before[len(before)-1]
		testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = $1", deleted)
	}
	res := tb.replay(t, replay.Selector{Names: []string{"a"}}, opts)
	close(stop)
	require.NoError(t, <-produced)

	// The snapshot: at least the 40 events recorded before, none of the 20
	// dispatched during the replay.
	require.GreaterOrEqual(t, res.Selected, len(before))
	require.Equal(t, res.Selected, progress[0].Selected)
	require.Equal(t, replay.Progress{Selected: res.Selected, Done: res.Selected, Jobs: res.Jobs, Skipped: res.SkippedCount},
		progress[len(progress)-1])
	require.Equal(t, []replay.SkippedEvent{{EventID: deleted, Cause: replay.SkipNoRow,
		Reason: "no row in " + tb.DB.Events() + " with id = " + deleted}}, res.Skipped)
	require.Equal(t, res.Selected-1, res.Events)
	require.Equal(t, map[string]int{"k1": res.Events, "k2": res.Events}, res.JobsByHandler)
	require.Equal(t, 2*res.Events, res.Jobs)

	// Exactly the planned events got jobs, and the record says the same.
	want := map[string][]string{}
	for _, p := range res.Planned {
		want[p.EventID] = []string{"k1", "k2"}
	}
	require.Len(t, want, res.Events)
	for _, id := range before[:len(before)-1] {
		require.Contains(t, want, id)
	}
	tb.requireReplayed(t, res, want)
	tb.requireRecord(t, res, opts, `{"names": ["a"]}`)
	require.Greater(t, tb.count(t, "notified_dispatch"), res.Selected+19, "events were dispatched during the replay")
}

func TestReplayNothingToReplayRecordsNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a", "a")
	tb.dispatchAndStop(t, len(ids))

	for _, sel := range []replay.Selector{
		{IDs: []string{"999999999"}},
		{Names: []string{"nobody_sends_this"}},
		{FromID: "3"},
		{FromID: "2", ToID: "1"},
		{IDs: []string{ids[0]}, Outcomes: []string{"unrouted"}},
	} {
		for _, dry := range []bool{false, true} {
			opts := replayOpts("nothing")
			opts.DryRun = dry
			_, nothing := tb.replayNothing(t, sel, opts)
			require.Zero(t, nothing.Selected, "%+v", sel)
			require.EqualError(t, nothing, fmt.Sprintf("nothing to replay: the selector matches no event recorded on channel %q", tb.DB.Channel))
		}
	}
	require.Zero(t, tb.count(t, "notified_replay"))
}

func TestReplayUnknownHandlerRecordsNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k_a")
	tb.Route(t, "b", "k_b")
	tb.Route(t, "b", "k_ab")
	tb.Route(t, "a", "k_ab")
	ids := tb.InsertEvents(t, "a", "a", "b")
	tb.dispatchAndStop(t, len(ids))
	jobs := tb.count(t, "river_job")
	// Event 1 is named b now: replay routes by the row's name.
	testdb.Exec(t, tb.DB.Pool, "UPDATE "+tb.DB.Events()+" SET name = 'b' WHERE id = $1", ids[0])

	names := replay.Selector{Names: []string{"a"}} // events 1 and 2, named a when dispatched
	for _, c := range []struct {
		handlers []string
		want     replay.UnknownHandlerError
		err      string
	}{
		{[]string{"nonexistent"}, replay.UnknownHandlerError{Handler: "nonexistent"},
			`unknown handler: no route has handler "nonexistent" (Options.Handlers)`},
		{[]string{"k_a", "nonexistent"}, replay.UnknownHandlerError{Handler: "nonexistent"},
			`unknown handler: no route has handler "nonexistent" (Options.Handlers)`},
		{[]string{"k_b"}, replay.UnknownHandlerError{Handler: "k_b", Selected: 1, Names: []string{"a"}},
			`unknown handler: handler "k_b" (Options.Handlers) has no route for the names of the 1 selected events (a)`},
		{[]string{"k_ab", "k_b"}, replay.UnknownHandlerError{Handler: "k_b", Selected: 1, Names: []string{"a"}}, ""},
	} {
		for _, dry := range []bool{false, true} {
			opts := replayOpts("handlers")
			opts.Handlers, opts.DryRun = c.handlers, dry
			sel := names
			if c.want.Selected == 1 {
				sel = replay.Selector{IDs: []string{ids[1]}}
			}
			res, err := replay.Run(context.Background(), tb.DB.Pool, tb.Config, sel, opts)
			require.Nil(t, res)
			require.ErrorIs(t, err, replay.ErrUnknownHandler, "%v", c.handlers)
			var unknown *replay.UnknownHandlerError
			require.ErrorAs(t, err, &unknown)
			require.Equal(t, c.want, *unknown, "%v", c.handlers)
			if c.err != "" {
				require.EqualError(t, err, c.err)
			}
		}
	}
	require.Zero(t, tb.count(t, "notified_replay"))
	require.Equal(t, jobs, tb.count(t, "river_job"))

	// k_b has a route for b, the name event 1 has now.
	opts := replayOpts("renamed")
	opts.Handlers = []string{"k_b"}
	res := tb.replay(t, names, opts)
	require.Equal(t, 2, res.Selected)
	require.Equal(t, []replay.SkippedEvent{{EventID: ids[1], Cause: replay.SkipNoRoute,
		Reason: `event name "a" has no route to the chosen handlers`}}, res.Skipped)
	tb.requireReplayed(t, res, map[string][]string{ids[0]: {"k_b"}})
}

// TestReplayRecordsFromItsFirstJob: batches whose events are all skipped
// record nothing by themselves; the record, made by the first batch with
// jobs, counts them all the same.
func TestReplayRecordsFromItsFirstJob(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.Route(t, "a", "k")
	ids := tb.InsertEvents(t, "a", "a", "a", "a", "a")
	tb.dispatchAndStop(t, len(ids))
	testdb.Exec(t, tb.DB.Pool, "DELETE FROM "+tb.DB.Events()+" WHERE id = ANY($1::bigint[])", ids[:3])

	var records []int
	opts := replayOpts("first job")
	opts.BatchSize = 2
	opts.Progress = func(replay.Progress) { records = append(records, tb.count(t, "notified_replay")) }
	res := tb.replay(t, replay.Selector{Names: []string{"a"}}, opts)
	require.Equal(t, []int{0, 1, 1}, records, "replays recorded after each batch")
	require.Equal(t, []int{5, 2, 2, 3}, []int{res.Selected, res.Events, res.Jobs, res.SkippedCount})
	tb.requireReplayed(t, res, map[string][]string{ids[3]: {"k"}, ids[4]: {"k"}})
	tb.requireRecord(t, res, opts, `{"names": ["a"]}`)
}
