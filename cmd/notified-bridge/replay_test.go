package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// replayJSON is the output of `replay --json` and `dead-letters retry --json`.
type replayJSON struct {
	ReplayID      int64          `json:"replay_id"`
	DryRun        bool           `json:"dry_run"`
	Selected      int            `json:"selected"`
	Events        int            `json:"events"`
	Jobs          int            `json:"jobs"`
	JobsByHandler map[string]int `json:"jobs_by_handler"`
	Planned       []struct {
		EventID   string   `json:"event_id"`
		EventName string   `json:"event_name"`
		Handlers  []string `json:"handlers"`
	} `json:"planned"`
	Skipped []struct {
		EventID string `json:"event_id"`
		Cause   string `json:"cause"`
		Reason  string `json:"reason"`
	} `json:"skipped"`
	SkippedCount   int            `json:"skipped_count"`
	SkippedByCause map[string]int `json:"skipped_by_cause"`
}

// requireAddsUp asserts that a finished replay's figures add up.
func (r replayJSON) requireAddsUp(t *testing.T) {
	t.Helper()
	require.Equal(t, r.Selected, r.Events+r.SkippedCount, "selected = enqueued for + skipped")
	jobs, skipped := 0, 0
	for _, n := range r.JobsByHandler {
		jobs += n
	}
	for _, n := range r.SkippedByCause {
		skipped += n
	}
	require.Equal(t, r.Jobs, jobs, "jobs by handler %v", r.JobsByHandler)
	require.Equal(t, r.SkippedCount, skipped, "skipped by cause %v", r.SkippedByCause)
}

// replayRecords counts the rows a replay writes.
func (f *fixture) replayRecords(t *testing.T) (jobs, replays int) {
	t.Helper()
	return f.jobs(t), count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_replay"))
}

func TestReplaySelectors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.finalize(t, f.job(t, f.signup1, "send_welcome"), "discarded", "smtp down")
	// The order was dispatched two hours ago.
	testdb.Exec(t, f.db.Pool, "UPDATE "+tbl(f.db, "notified_dispatch")+" SET dispatched_at = now() - interval '2 hours' WHERE event_id = $1", f.order)
	jobs, replays := f.replayRecords(t)

	rfc := func(d time.Duration) string { return time.Now().Add(-d).Format(time.RFC3339) }
	all := []string{f.signup1, f.signup2, f.order, f.noise}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--id", f.signup1}, []string{f.signup1}},
		{[]string{"--id", "00" + f.signup1, "--id", f.order}, []string{f.signup1, f.order}},
		{[]string{"--from-id", f.signup2, "--to-id", f.order}, []string{f.signup2, f.order}},
		{[]string{"--from-id", f.order}, []string{f.order, f.noise}},
		{[]string{"--to-id", f.signup1}, []string{f.signup1}},
		{[]string{"--name", "user_signed_up"}, []string{f.signup1, f.signup2}},
		{[]string{"--name", "user_signed_up", "--name", "page_viewed"}, []string{f.signup1, f.signup2, f.noise}},
		{[]string{"--name", "user_signed_up", "--id", f.order}, nil}, // selectors combine
		{[]string{"--name", "nobody_sends_this"}, nil},
		{[]string{"--since", "1h"}, []string{f.signup1, f.signup2, f.noise}},
		{[]string{"--until", "1h"}, []string{f.order}},
		{[]string{"--since", "3h", "--until", "90m"}, []string{f.order}},
		{[]string{"--since", rfc(3 * time.Hour), "--until", rfc(time.Hour)}, []string{f.order}},
		{[]string{"--since", rfc(time.Hour)}, []string{f.signup1, f.signup2, f.noise}},
		{[]string{"--until", time.Now().Add(24 * time.Hour).Format("2006-01-02")}, all},
		{[]string{"--outcome", "dispatched", "--name", "order_placed"}, []string{f.order}},
		{[]string{"--outcome", "dispatched", "--outcome", "unrouted"}, all},
		{[]string{"--job-state", "discarded"}, []string{f.signup1}},
		{[]string{"--job-state", "discarded", "--handler", "send_welcome"}, []string{f.signup1}},
		{[]string{"--job-state", "discarded", "--handler", "sync_crm"}, nil},
		{[]string{"--job-state", "available", "--handler", "sync_crm"}, []string{f.signup1, f.signup2}},
	}
	for _, tc := range cases {
		if tc.want == nil {
			// Nothing selected: a warning, exit code 1, nothing on stdout.
			stdout, stderr, code := run(t, f.db, f.argv("replay", append([]string{"--dry-run"}, tc.args...)...)...)
			requireUserError(t, stderr, code, "nothing to replay: no event recorded on channel "+strconv.Quote(f.db.Channel)+" matches ")
			require.Empty(t, stdout)
			continue
		}
		var res replayJSON
		f.mustJSON(t, &res, "replay", append([]string{"--dry-run"}, tc.args...)...)
		require.True(t, res.DryRun, "%q", tc.args)
		require.Zero(t, res.ReplayID, "%q", tc.args)
		var got []string
		for _, p := range res.Planned {
			got = append(got, p.EventID)
		}
		for _, s := range res.Skipped {
			got = append(got, s.EventID)
		}
		require.ElementsMatch(t, tc.want, got, "replay %q selects", tc.args)
		require.Equal(t, len(tc.want), res.Selected, "replay %q selects", tc.args)
		require.Equal(t, len(res.Planned), res.Events, "%q", tc.args)
		require.Equal(t, len(res.Skipped), res.SkippedCount, "%q", tc.args)
		res.requireAddsUp(t)
	}

	// The unrouted event, skipped: nothing to replay.
	stdout, stderr, code := run(t, f.db, f.argv("replay", "--dry-run", "--outcome", "unrouted")...)
	requireUserError(t, stderr, code, "nothing to replay: the selected event was skipped (1 no route for the name): see why for each event in the output")
	require.Contains(t, stdout, "\n1 event selected: would enqueue 0 jobs for 0 events, 1 skipped (")

	// What a dry run would enqueue, per handler; the unrouted event is
	// skipped with its reason.
	var res replayJSON
	f.mustJSON(t, &res, "replay", "--dry-run", "--outcome", "dispatched", "--outcome", "unrouted", "--handler", "sync_crm")
	require.Equal(t, 4, res.Selected)
	require.Equal(t, 2, res.Events)
	require.Equal(t, 2, res.Jobs)
	require.Equal(t, map[string]int{"sync_crm": 2}, res.JobsByHandler)
	require.Equal(t, map[string]int{"no_route": 2}, res.SkippedByCause)
	res.requireAddsUp(t)
	for _, p := range res.Planned {
		require.Equal(t, []string{"sync_crm"}, p.Handlers)
	}
	require.ElementsMatch(t, []string{f.order, f.noise}, []string{res.Skipped[0].EventID, res.Skipped[1].EventID})
	for _, s := range res.Skipped {
		if s.EventID == f.noise {
			require.Equal(t, `event name "page_viewed" has no route to the chosen handlers`, s.Reason)
		}
	}

	// The dry-run table, without --reason.
	out := f.must(t, "replay", "--dry-run", "--name", "user_signed_up", "--name", "page_viewed")
	lines := strings.Split(out, "\n")
	require.Equal(t, "dry run: nothing was changed", lines[0])
	require.Regexp(t, `^3 events selected: would enqueue 4 jobs for 2 events, 1 skipped \(.+\)$`, lines[1])
	require.Equal(t, "jobs by handler: send_welcome 2, sync_crm 2", lines[2])
	require.Equal(t, "skipped: 1 no route for the name", lines[3])
	require.Equal(t, []string{"EVENT", "NAME", "HANDLERS"}, line(t, out, "EVENT"))
	require.Equal(t, []string{f.signup1, "user_signed_up", "send_welcome,", "sync_crm"}, line(t, out, f.signup1, "user_signed_up"))
	require.Equal(t, []string{f.signup2, "user_signed_up", "send_welcome,", "sync_crm"}, line(t, out, f.signup2, "user_signed_up"))
	require.Contains(t, out, "\nskipped:\n")
	require.Equal(t, []string{f.noise, "no", "route", "for", "event", "name", `"page_viewed"`}, line(t, out, f.noise, "no"))

	gotJobs, gotReplays := f.replayRecords(t)
	require.Equal(t, jobs, gotJobs, "dry runs enqueue nothing")
	require.Equal(t, replays, gotReplays, "dry runs record nothing")
	require.Zero(t, replays)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	welcome, crm := f.job(t, f.signup1, "send_welcome"), f.job(t, f.signup1, "sync_crm")
	f.finalize(t, welcome, "discarded", "smtp down")
	ctx := t.Context()

	// --job-state discarded --handler: one new job, for that handler only.
	jobs, _ := f.replayRecords(t)
	var res replayJSON
	f.mustJSON(t, &res, "replay", "--job-state", "discarded", "--handler", "send_welcome", "--reason", "smtp fixed")
	require.Positive(t, res.ReplayID)
	require.False(t, res.DryRun)
	require.Equal(t, 1, res.Selected)
	require.Equal(t, 1, res.Events)
	require.Equal(t, 1, res.Jobs)
	require.Len(t, res.Planned, 1)
	require.Equal(t, f.signup1, res.Planned[0].EventID)
	require.Equal(t, "user_signed_up", res.Planned[0].EventName)
	require.Equal(t, []string{"send_welcome"}, res.Planned[0].Handlers)
	require.Equal(t, jobs+1, f.jobs(t))
	replayed := f.job(t, f.signup1, "send_welcome")
	require.Greater(t, replayed, welcome)
	require.Equal(t, crm, f.job(t, f.signup1, "sync_crm"))
	var meta map[string]any
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT metadata->'notified' FROM "+tbl(f.db, "river_job")+" WHERE id = $1", replayed).Scan(&meta))
	require.Equal(t, map[string]any{"channel": f.db.Channel, "event_id": f.signup1, "event_name": "user_signed_up",
		"replay_id": float64(res.ReplayID)}, meta)
	var (
		reason, requestedBy, selector string
		handlers                      []string
		events, njobs, skipped        int
		finished                      bool
	)
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT reason, requested_by, selector::text, handlers, events, jobs, skipped, finished_at IS NOT NULL FROM "+
		tbl(f.db, "notified_replay")+" WHERE id = $1", res.ReplayID).Scan(&reason, &requestedBy, &selector, &handlers, &events, &njobs, &skipped, &finished))
	require.Equal(t, "smtp fixed", reason)
	require.Contains(t, requestedBy, "@")
	require.JSONEq(t, `{"job_states": ["discarded"]}`, selector)
	require.Equal(t, []string{"send_welcome"}, handlers)
	require.Equal(t, []int{1, 1, 0}, []int{events, njobs, skipped})
	require.True(t, finished)

	// The newest send_welcome job is no longer discarded; the history shows
	// the replay.
	f.fail(t, `nothing to replay: no event recorded on channel "`+f.db.Channel+`" matches --job-state discarded: `+
		"replay selects only events the bridge has recorded (`notified-bridge history ID` shows one), "+
		"matching every selector given; check them, and --channel", "replay", "--job-state", "discarded", "--dry-run")
	var ev eventJSON
	f.mustJSON(t, &ev, "history", f.signup1)
	require.Equal(t, []handlerState{{"send_welcome", "discarded"}, {"sync_crm", "available"}, {"send_welcome", "available"}},
		handlerStates(ev.Jobs))
	require.Nil(t, ev.Jobs[0].ReplayID)
	require.Equal(t, res.ReplayID, *ev.Jobs[2].ReplayID)
	require.Equal(t, "smtp fixed", *ev.Jobs[2].ReplayReason)
	require.Equal(t, []string{"#" + strconv.FormatInt(res.ReplayID, 10), "smtp", "fixed", "-"},
		line(t, f.must(t, "history", f.signup1), strconv.FormatInt(replayed, 10))[8:])

	// --outcome unrouted after the route is added: the unrouted event gets
	// its job.
	mustRun(t, f.db, "routes", "add", "page_viewed", "track_view")
	out := f.must(t, "replay", "--outcome", "unrouted", "--reason", "route added")
	require.Regexp(t, `^replay \d+ recorded\n1 event selected: enqueued 1 job for 1 event, 0 skipped \(.+\)\njobs by handler: track_view 1\n\n`, out)
	require.Equal(t, []string{f.noise, "page_viewed", "track_view"}, line(t, out, f.noise, "page_viewed"))
	f.job(t, f.noise, "track_view")
	ev = eventJSON{}
	f.mustJSON(t, &ev, "history", f.noise)
	require.Equal(t, "unrouted", ev.Outcome, "the outcome at dispatch stays")
	require.Equal(t, []handlerState{{"track_view", "available"}}, handlerStates(ev.Jobs))
	require.Equal(t, "route added", *ev.Jobs[0].ReplayReason)

	// --id, with --json; an id range across batches of one event.
	jobs, _ = f.replayRecords(t)
	res = replayJSON{}
	f.mustJSON(t, &res, "replay", "--id", f.signup2, "--reason", "resend")
	require.Equal(t, []int{1, 1, 2}, []int{res.Selected, res.Events, res.Jobs})
	res = replayJSON{}
	f.mustJSON(t, &res, "replay", "--from-id", f.signup2, "--to-id", f.noise, "--batch-size", "1", "--reason", "range")
	require.Equal(t, []int{3, 3, 4}, []int{res.Selected, res.Events, res.Jobs})
	require.Equal(t, jobs+6, f.jobs(t))
	require.Equal(t, 6, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "river_job")+" WHERE args->>'event_id' = $1", f.signup2),
		"two jobs from the dispatch and two from each replay")
	require.Equal(t, 3, count(t, f.db, "SELECT events FROM "+tbl(f.db, "notified_replay")+" WHERE id = $1 AND finished_at IS NOT NULL", res.ReplayID))
	// --name and --since/--until, with --handler.
	res = replayJSON{}
	f.mustJSON(t, &res, "replay", "--name", "user_signed_up", "--since", "1h", "--until", time.Now().Add(time.Minute).Format(time.RFC3339),
		"--handler", "sync_crm", "--reason", "crm resync")
	require.Equal(t, []int{2, 2, 2}, []int{res.Selected, res.Events, res.Jobs})

	// An event whose row is gone is skipped, with why.
	testdb.Exec(t, f.db.Pool, "DELETE FROM "+tbl(f.db, "events")+" WHERE id = $1", f.order)
	jobs, _ = f.replayRecords(t)
	res = replayJSON{}
	f.mustJSON(t, &res, "replay", "--id", f.order, "--id", f.signup1, "--handler", "send_welcome", "--reason", "row deleted")
	require.Equal(t, []int{2, 1, 1, 1}, []int{res.Selected, res.Events, res.Jobs, res.SkippedCount})
	require.Equal(t, f.order, res.Skipped[0].EventID)
	require.Equal(t, "no_row", res.Skipped[0].Cause)
	require.Equal(t, "no row in "+f.db.Events()+" with id = "+f.order, res.Skipped[0].Reason)
	res.requireAddsUp(t)
	require.Equal(t, jobs+1, f.jobs(t))
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	jobs, replays := f.replayRecords(t)

	noSel := "no events selected: choose events by id, id range, name, time, outcome, job state or job"
	notATime := ": %q is not a time: use RFC 3339 (2026-11-27T10:00:00Z), a date (2026-11-27), or an age (24h)"
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"a replay needs a reason, for the record: say why with --reason", []string{"--id", f.signup1}},
		{"a replay needs a reason, for the record: say why with --reason", []string{"--id", f.signup1, "--reason", "  "}},
		{noSel, []string{"--reason", "r"}},
		{noSel, []string{}},
		{noSel, []string{"--handler", "send_welcome", "--reason", "r"}},
		{noSel, []string{"--dry-run"}},
		{"--since" + fmt.Sprintf(notATime, "garbage"), []string{"--since", "garbage", "--reason", "r"}},
		{"--until" + fmt.Sprintf(notATime, "yesterday"), []string{"--name", "x", "--until", "yesterday", "--reason", "r"}},
		{`--since: age "-1h" is negative: use e.g. 24h for a day ago`, []string{"--since", "-1h", "--reason", "r"}},
		{`replay: unexpected argument "` + f.signup1 + `": select events with --id ` + f.signup1, []string{f.signup1}},
		{`replay: unexpected argument "` + f.signup1 + `": select events with --id ` + f.signup1, []string{"--reason", "r", f.signup1}},
		{`outcome "bogus" is not one of dispatched, unrouted, missing, rejected`, []string{"--outcome", "bogus", "--reason", "r"}},
		{`job state "bogus" is not one of available, cancelled, completed, discarded, pending, retryable, running, scheduled`,
			[]string{"--job-state", "bogus", "--reason", "r"}},
		{`replay --id: payload "abc" is not a valid bigint id`, []string{"--id", "abc", "--reason", "r"}},
		{`replay --from-id: payload "x" is not a valid bigint id`, []string{"--from-id", "x", "--reason", "r"}},
		{`replay --to-id: payload "99999999999999999999" is out of range for id column type bigint`,
			[]string{"--to-id", "99999999999999999999", "--reason", "r"}},
		{"--batch-size 0 is out of range: use 1 to 10000", []string{"--id", f.signup1, "--batch-size", "0", "--reason", "r"}},
	} {
		f.fail(t, tc.want, "replay", tc.args...)
	}
	stdout, stderr, code := run(t, f.db, f.argv("replay", "--since", "1h", "--until", "2h", "--reason", "r")...)
	requireUserError(t, stderr, code, "time range is empty: since ", " is not before until ")
	require.Empty(t, stdout)

	gotJobs, gotReplays := f.replayRecords(t)
	require.Equal(t, jobs, gotJobs, "refused replays enqueue nothing")
	require.Equal(t, replays, gotReplays, "refused replays record nothing")
}

// TestReplayNothingToReplay: a replay that would enqueue nothing (no event
// selected, a handler without a route for them, every event skipped) warns
// with what to check, records nothing and exits with code 1, dry run or not,
// with --json or not.
func TestReplayNothingToReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	testdb.Exec(t, f.db.Pool, "DELETE FROM "+tbl(f.db, "events")+" WHERE id = $1", f.order)
	jobs, replays := f.replayRecords(t)
	check := "replay selects only events the bridge has recorded (`notified-bridge history ID` shows one), " +
		"matching every selector given; check them, and --channel"
	channel := strconv.Quote(f.db.Channel)

	for _, tc := range []struct {
		want string // after "nothing to replay", with %s for "; nothing was recorded"
		args []string
	}{
		{`: no event recorded on channel ` + channel + ` matches --id 999999999%s: ` + check,
			[]string{"--id", "999999999"}},
		{`: no event recorded on channel ` + channel + ` matches --from-id ` + f.noise + `0 --name user_signed_up%s: ` + check,
			[]string{"--from-id", f.noise + "0", "--name", "user_signed_up"}},
		{`: --handler nonexistent: no route has this handler%s: check its spelling against ` + "`notified-bridge routes list`",
			[]string{"--handler", "nonexistent", "--name", "user_signed_up"}},
		{` for --handler ship_order: no route sends the names of the 2 events selected (user_signed_up) to it%s: ` +
			"check the routes with `notified-bridge routes list`, and the selectors: --name user_signed_up",
			[]string{"--handler", "sync_crm", "--handler", "ship_order", "--name", "user_signed_up"}},
	} {
		for _, mode := range [][]string{{"--reason", "r"}, {"--reason", "r", "--json"}, {"--dry-run"}} {
			recorded := "; nothing was recorded"
			if mode[0] == "--dry-run" {
				recorded = ""
			}
			f.fail(t, "nothing to replay"+fmt.Sprintf(tc.want, recorded), "replay", append(mode, tc.args...)...)
		}
	}

	// Every selected event skipped: the output says which and why.
	skipped := "nothing to replay: all 2 selected events were skipped (1 no route for the name, 1 no row in " + f.db.Events() +
		")%s: see why for each event in the output"
	for _, mode := range [][]string{{"--reason", "r"}, {"--dry-run"}} {
		stdout, stderr, code := run(t, f.db, f.argv("replay", append(mode, "--id", f.order, "--id", f.noise)...)...)
		recorded, header := "; nothing was recorded", "nothing was recorded"
		if mode[0] == "--dry-run" {
			recorded, header = "", "dry run: nothing was changed"
		}
		requireUserError(t, stderr, code, fmt.Sprintf(skipped, recorded))
		lines := strings.Split(stdout, "\n")
		require.Equal(t, header, lines[0])
		require.Regexp(t, `^2 events selected: (would enqueue|enqueued) 0 jobs for 0 events, 2 skipped \(.+\)$`, lines[1])
		require.Equal(t, "skipped: 1 no route for the name, 1 no row in "+f.db.Events(), lines[2])
		require.Equal(t, []string{f.order, "no", "row", "in", f.db.Events(), "with", "id", "=", f.order}, line(t, stdout, f.order, "no"))
		require.Equal(t, []string{f.noise, "no", "route", "for", "event", "name", `"page_viewed"`}, line(t, stdout, f.noise, "no"))
	}
	stdout, stderr, code := run(t, f.db, f.argv("replay", "--json", "--reason", "r", "--id", f.order)...)
	requireUserError(t, stderr, code, "nothing to replay: the selected event was skipped (1 no row in "+f.db.Events()+
		"); nothing was recorded: see why for each event in the output")
	var res replayJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	require.Equal(t, []int{1, 0, 0, 1}, []int{res.Selected, res.Events, res.Jobs, res.SkippedCount})
	require.Zero(t, res.ReplayID)
	require.Equal(t, map[string]int{"no_row": 1}, res.SkippedByCause)
	require.Equal(t, "no_row", res.Skipped[0].Cause)

	gotJobs, gotReplays := f.replayRecords(t)
	require.Equal(t, jobs, gotJobs, "nothing to replay enqueues nothing")
	require.Equal(t, replays, gotReplays, "nothing to replay records nothing")
	require.Zero(t, replays)
}
