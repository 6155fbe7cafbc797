package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// fixture is a schema whose events went the real way: the capture trigger,
// routes, and a `run` bridge that dispatched them and was stopped with
// SIGINT. Events:
//
//	signup1, signup2  user_signed_up -> send_welcome (3 attempts), sync_crm
//	order             order_placed   -> ship_order
//	noise             page_viewed    (unrouted)
//
// Every job is still available: no worker runs.
type fixture struct {
	db                             *testdb.DB
	signup1, signup2, order, noise string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	mustRun(t, db, "routes", "add", "--max-attempts", "3", "user_signed_up", "send_welcome")
	mustRun(t, db, "routes", "add", "user_signed_up", "sync_crm")
	mustRun(t, db, "routes", "add", "order_placed", "ship_order")
	f := &fixture{db: db}
	for _, e := range []struct {
		dst  *string
		name string
	}{{&f.signup1, "user_signed_up"}, {&f.signup2, "user_signed_up"}, {&f.order, "order_placed"}, {&f.noise, "page_viewed"}} {
		*e.dst = strconv.FormatInt(insertEvent(t, db, e.name, `{"k": "v"}`), 10)
	}
	b := startBridge(t, db)
	waitDispatched(t, db, 4, 15*time.Second)
	require.Equal(t, exitInterrupt, interrupt(t, b), "exit code after SIGINT")
	require.Equal(t, 5, count(t, db, "SELECT count(*) FROM "+tbl(db, "river_job")))
	return f
}

// The flags each command takes to find the fixture's events.
var (
	withChannel = map[string]bool{"history": true, "status": true, "replay": true, "dead-letters": true, "dead-letters retry": true}
	withTable   = map[string]bool{"history": true, "replay": true, "dead-letters retry": true}
)

// argv is command (one or two words) with the fixture's --channel and
// --table where the command takes them, then args.
func (f *fixture) argv(command string, args ...string) []string {
	out := strings.Fields(command)
	if withChannel[command] {
		out = append(out, "--channel", f.db.Channel)
	}
	if withTable[command] {
		out = append(out, "--table", f.db.Events())
	}
	return append(out, args...)
}

// must runs command with the fixture's flags and requires success.
func (f *fixture) must(t *testing.T, command string, args ...string) string {
	t.Helper()
	return mustRun(t, f.db, f.argv(command, args...)...)
}

// fail runs command with the fixture's flags, requires the one-line user
// error want exactly and nothing on stdout.
func (f *fixture) fail(t *testing.T, want, command string, args ...string) {
	t.Helper()
	stdout, stderr, code := run(t, f.db, f.argv(command, args...)...)
	requireUserError(t, stderr, code)
	require.Equal(t, "notified-bridge: "+want+"\n", stderr)
	require.Empty(t, stdout)
}

// mustJSON runs command with --json and decodes its output into v.
func (f *fixture) mustJSON(t *testing.T, v any, command string, args ...string) {
	t.Helper()
	out := f.must(t, command, append([]string{"--json"}, args...)...)
	require.NoError(t, json.Unmarshal([]byte(out), v), out)
}

// job is the newest job of kind for the event.
func (f *fixture) job(t *testing.T, eventID, kind string) int64 {
	t.Helper()
	var id *int64
	require.NoError(t, f.db.Pool.QueryRow(t.Context(), "SELECT max(id) FROM "+tbl(f.db, "river_job")+
		" WHERE args->>'event_id' = $1 AND kind = $2", eventID, kind).Scan(&id))
	require.NotNil(t, id, "no %s job for event %s", kind, eventID)
	return *id
}

// finalize ends a job the way River does (state, finalized_at, errors),
// which fires notified's recording trigger.
func (f *fixture) finalize(t *testing.T, jobID int64, state, errMsg string) {
	t.Helper()
	var errs []string
	if errMsg != "" {
		e, err := json.Marshal(map[string]any{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": errMsg})
		require.NoError(t, err)
		errs = []string{string(e)}
	}
	testdb.Exec(t, f.db.Pool, "UPDATE "+tbl(f.db, "river_job")+
		" SET state = $2, attempt = 1, attempted_at = now(), finalized_at = now(), errors = $3::jsonb[] WHERE id = $1",
		jobID, state, errs)
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_job")+" WHERE job_id = $1 AND state = $2",
		jobID, state), "notified_job records job %d as %s", jobID, state)
}

// jobs counts River's jobs.
func (f *fixture) jobs(t *testing.T) int {
	t.Helper()
	return count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "river_job"))
}

// interrupt sends SIGINT and returns the exit code.
func interrupt(t *testing.T, p *bridgeProc) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("bridge did not exit within 10s of SIGINT")
	}
	return p.exitCode()
}

// The JSON of `history --json` and of `dead-letters --json`.
type eventJSON struct {
	Channel      string     `json:"channel"`
	ID           string     `json:"event_id"`
	Name         *string    `json:"event_name"`
	Outcome      string     `json:"outcome"`
	Reason       *string    `json:"reason"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	Routes       []struct {
		Kind string `json:"kind"`
	} `json:"routes"`
	Jobs []jobJSON      `json:"jobs"`
	Data map[string]any `json:"current_row"`
}

type jobJSON struct {
	ID           int64          `json:"job_id"`
	EventID      string         `json:"event_id"`
	EventName    string         `json:"event_name"`
	Handler      string         `json:"handler"`
	State        string         `json:"state"`
	FinalizedAt  *time.Time     `json:"finalized_at"`
	LastError    *string        `json:"last_error"`
	ReplayID     *int64         `json:"replay_id"`
	ReplayReason *string        `json:"replay_reason"`
	Data         map[string]any `json:"data"`
}

type handlerState struct{ Handler, State string }

func handlerStates(js []jobJSON) []handlerState {
	out := make([]handlerState, len(js))
	for i, j := range js {
		out[i] = handlerState{j.Handler, j.State}
	}
	return out
}

// line returns the fields of the one line of out whose fields start with
// prefix, failing if there is no such line or more than one.
func line(t *testing.T, out string, prefix ...string) []string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(out, "\n") {
		fs := strings.Fields(l)
		if len(fs) >= len(prefix) && slices.Equal(fs[:len(prefix)], prefix) {
			require.Nil(t, found, "two lines start with %q in:\n%s", prefix, out)
			found = fs
		}
	}
	require.NotNil(t, found, "no line starts with %q in:\n%s", prefix, out)
	return found
}

func TestHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	welcome, crm := f.job(t, f.signup1, "send_welcome"), f.job(t, f.signup1, "sync_crm")
	f.finalize(t, welcome, "discarded", "smtp down")

	// Table.
	out := f.must(t, "history", f.signup1)
	require.True(t, strings.HasPrefix(out, fmt.Sprintf("event %s on channel %q: user_signed_up\n\n", f.signup1, f.db.Channel)), out)
	require.Equal(t, []string{"outcome", "dispatched"}, line(t, out, "outcome"))
	require.Equal(t, []string{"routed", "to", "send_welcome,", "sync_crm"}, line(t, out, "routed", "to"))
	require.Contains(t, strings.Join(line(t, out, "current", "row"), " "), `{"id":`+f.signup1+`,"name":"user_signed_up","payload":{"k": "v"},"created_at":`)
	require.Equal(t, []string{"JOB", "HANDLER", "STATE", "ATTEMPT", "CREATED", "FINALIZED", "REPLAY", "ERROR", "/", "OUTPUT"},
		line(t, out, "JOB"))
	wl := line(t, out, strconv.FormatInt(welcome, 10))
	require.Equal(t, []string{"send_welcome", "discarded", "1/3"}, wl[1:4])
	require.Equal(t, []string{"smtp", "down"}, wl[len(wl)-2:])
	cl := line(t, out, strconv.FormatInt(crm, 10))
	require.Equal(t, []string{"sync_crm", "available", "0/25"}, cl[1:4])
	require.Equal(t, []string{"-", "-", "-"}, cl[len(cl)-3:], "not finalized, not replayed, no error")

	// JSON, with the flag after the id.
	var ev eventJSON
	out = f.must(t, "history", "--json", f.signup1)
	require.NoError(t, json.Unmarshal([]byte(out), &ev), out)
	require.Equal(t, f.db.Channel, ev.Channel)
	require.Equal(t, f.signup1, ev.ID)
	require.Equal(t, "user_signed_up", *ev.Name)
	require.Equal(t, "dispatched", ev.Outcome)
	require.Nil(t, ev.Reason)
	require.NotNil(t, ev.DispatchedAt)
	require.Len(t, ev.Routes, 2)
	require.Equal(t, []handlerState{{"send_welcome", "discarded"}, {"sync_crm", "available"}}, handlerStates(ev.Jobs))
	require.Equal(t, welcome, ev.Jobs[0].ID)
	require.Equal(t, "smtp down", *ev.Jobs[0].LastError)
	require.NotNil(t, ev.Jobs[0].FinalizedAt)
	require.Nil(t, ev.Jobs[1].LastError)
	require.Nil(t, ev.Jobs[1].FinalizedAt)
	require.Equal(t, map[string]any{"k": "v"}, ev.Data["payload"], "current_row is the event's row")
	for _, j := range ev.Jobs {
		require.Equal(t, ev.Data, j.Data, "job %d received the row as it is", j.ID)
	}
	require.Equal(t, []string{"job", strconv.FormatInt(welcome, 10), "the", "current", "row"}, line(t, f.must(t, "history", f.signup1), "job", strconv.FormatInt(welcome, 10)))

	// A non-canonical id finds the event by its canonical id.
	var padded eventJSON
	f.mustJSON(t, &padded, "history", "00"+f.signup1)
	require.Equal(t, f.signup1, padded.ID)
	require.Equal(t, ev.Jobs, padded.Jobs)
	require.Contains(t, f.must(t, "history", "00"+f.signup1), fmt.Sprintf("event %s on channel", f.signup1))

	// An unrouted event has no jobs, and the table says how to replay it.
	out = f.must(t, "history", f.noise)
	require.Equal(t, []string{"outcome", "unrouted"}, line(t, out, "outcome"))
	require.Equal(t, []string{"reason", "no", "route", "for", "event", "name", `"page_viewed"`}, line(t, out, "reason"))
	require.Contains(t, out, "no jobs: replay it once it can be handled, e.g. `notified-bridge replay --id "+f.noise+" --reason ...`\n")
	var unrouted eventJSON
	f.mustJSON(t, &unrouted, "history", f.noise)
	require.Equal(t, "unrouted", unrouted.Outcome)
	require.Empty(t, unrouted.Jobs)
	require.Empty(t, unrouted.Routes)

	// An event still in the outbox (no bridge runs) is pending.
	pending := strconv.FormatInt(insertEvent(t, f.db, "user_signed_up", `{}`), 10)
	var pend eventJSON
	f.mustJSON(t, &pend, "history", pending)
	require.Equal(t, "pending", pend.Outcome)
	require.Equal(t, "in the outbox, not dispatched yet: is a bridge running for this channel?", *pend.Reason)
	require.Nil(t, pend.DispatchedAt)
	require.Empty(t, pend.Jobs)

	// The events table cannot be read: the history is shown without the row.
	out = mustRun(t, f.db, "history", "--channel", f.db.Channel, "--table", f.db.Schema+".no_such_table", f.signup1)
	require.Equal(t, []string{"outcome", "dispatched"}, line(t, out, "outcome"))
	require.Equal(t, []string{"current", "row", "not", "read:"}, line(t, out, "current", "row")[:4])
	require.Contains(t, strings.Join(line(t, out, "current", "row"), " "), "no_such_table")

	// After River's cleaner deletes the finished job, its recorded outcome
	// is shown, without the data its handler received.
	testdb.Exec(t, f.db.Pool, "DELETE FROM "+tbl(f.db, "river_job")+" WHERE id = $1", welcome)
	var cleaned eventJSON
	f.mustJSON(t, &cleaned, "history", f.signup1)
	require.Nil(t, cleaned.Jobs[0].Data)
	ev.Jobs[0].Data = nil
	require.Equal(t, ev.Jobs, cleaned.Jobs)

	// Unknown ids and a missing argument.
	notFound := fmt.Sprintf("event not found: no event 999999 on channel %q has been notified (or its history is past the retention)", f.db.Channel)
	f.fail(t, notFound, "history", "999999")
	f.fail(t, notFound, "history", "--json", "999999")
	f.fail(t, fmt.Sprintf("event not found: no event not-an-id on channel %q has been notified (or its history is past the retention)", f.db.Channel),
		"history", "not-an-id")
	f.fail(t, "history takes one argument, the event id, e.g. history 42", "history")
	f.fail(t, `history: unexpected argument "2": history takes one argument, the event id, e.g. history 42`, "history", "1", "2")
}

type statusJSON struct {
	Channel          string           `json:"channel"`
	Backlog          int64            `json:"backlog"`
	OldestPendingAge *float64         `json:"oldest_pending_age_seconds"`
	LastMinute       map[string]int64 `json:"last_minute"`
	LastHour         map[string]int64 `json:"last_hour"`
	Window           float64          `json:"window_seconds"`
	Handlers         []struct {
		Handler   string           `json:"handler"`
		States    map[string]int64 `json:"states"`
		Failing   bool             `json:"failing"`
		LastError *string          `json:"last_error"`
	} `json:"handlers"`
	DeadLetters int64 `json:"dead_letters"`
	Bridges     []struct {
		ID    string `json:"id"`
		PID   int    `json:"pid"`
		Alive bool   `json:"alive"`
	} `json:"bridges"`
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.finalize(t, f.job(t, f.signup1, "send_welcome"), "discarded", "smtp down")
	ship := f.job(t, f.order, "ship_order")
	f.finalize(t, ship, "completed", "")

	// Two events committed while no bridge runs wait in the outbox.
	insertEvent(t, f.db, "user_signed_up", `{}`)
	insertEvent(t, f.db, "order_placed", `{}`)

	var st statusJSON
	f.mustJSON(t, &st, "status")
	require.Equal(t, f.db.Channel, st.Channel)
	require.Equal(t, int64(2), st.Backlog)
	require.NotNil(t, st.OldestPendingAge)
	require.GreaterOrEqual(t, *st.OldestPendingAge, 0.0)
	require.Equal(t, map[string]int64{"dispatched": 3, "unrouted": 1}, st.LastMinute)
	require.Equal(t, map[string]int64{"dispatched": 3, "unrouted": 1}, st.LastHour)
	require.Equal(t, float64(24*60*60), st.Window)
	require.Len(t, st.Handlers, 3)
	hWelcome, hShip, hCrm := st.Handlers[0], st.Handlers[1], st.Handlers[2]
	require.Equal(t, "send_welcome", hWelcome.Handler)
	require.Equal(t, map[string]int64{"available": 1, "discarded": 1}, hWelcome.States)
	require.True(t, hWelcome.Failing)
	require.Equal(t, "smtp down", *hWelcome.LastError)
	require.Equal(t, "ship_order", hShip.Handler)
	require.Equal(t, map[string]int64{"completed": 1}, hShip.States)
	require.False(t, hShip.Failing)
	require.Nil(t, hShip.LastError)
	require.Equal(t, "sync_crm", hCrm.Handler)
	require.Equal(t, map[string]int64{"available": 2}, hCrm.States)
	require.False(t, hCrm.Failing)
	require.Equal(t, int64(1), st.DeadLetters)
	require.Empty(t, st.Bridges, "the stopped bridge unregistered")

	out := f.must(t, "status")
	require.True(t, strings.HasPrefix(out, fmt.Sprintf("channel %q at ", f.db.Channel)), out)
	require.Equal(t, []string{"backlog", "2", "events", "not", "dispatched", "yet,", "oldest", "waiting"}, line(t, out, "backlog")[:8])
	require.Equal(t, []string{"last", "minute", "3", "dispatched,", "1", "unrouted"}, line(t, out, "last", "minute"))
	require.Equal(t, []string{"dead", "letters", "(24h)", "1:", "see", "`notified-bridge", "dead-letters`"}, line(t, out, "dead", "letters"))
	require.Contains(t, out, "\njobs per handler (live, and finished in the last 24h)\n")
	require.Equal(t, []string{"HANDLER", "PENDING", "AVAILABLE", "SCHEDULED", "RETRYABLE", "RUNNING", "COMPLETED", "CANCELLED", "DISCARDED", "LAST", "ERROR"},
		line(t, out, "HANDLER"))
	wl := line(t, out, "send_welcome")
	require.Equal(t, []string{"0", "1", "0", "0", "0", "0", "0", "1", "smtp", "down", "("}, append(wl[1:11], wl[11][:1]))
	require.Equal(t, []string{"ship_order", "0", "0", "0", "0", "0", "1", "0", "0", "-"}, line(t, out, "ship_order"))
	require.Equal(t, []string{"sync_crm", "0", "2", "0", "0", "0", "0", "0", "0", "-"}, line(t, out, "sync_crm"))
	require.True(t, strings.HasSuffix(out, "\nbridges\n  none running: start one with `notified-bridge run`\n"), out)

	// --window bounds the finished jobs counted: the order shipped two hours
	// ago drops out of a one-hour window.
	// (notified_job records the finalization as River does: both move.)
	testdb.Exec(t, f.db.Pool, "UPDATE "+tbl(f.db, "river_job")+" SET finalized_at = now() - interval '2 hours' WHERE id = $1", ship)
	testdb.Exec(t, f.db.Pool, "UPDATE "+tbl(f.db, "notified_job")+" SET finalized_at = now() - interval '2 hours' WHERE job_id = $1", ship)
	st = statusJSON{}
	f.mustJSON(t, &st, "status", "--window", "1h")
	require.Equal(t, float64(60*60), st.Window)
	var kinds []string
	for _, h := range st.Handlers {
		kinds = append(kinds, h.Handler)
	}
	require.Equal(t, []string{"send_welcome", "sync_crm"}, kinds)
	require.Equal(t, int64(1), st.DeadLetters)
	require.Contains(t, f.must(t, "status", "--window", "1h"), "\njobs per handler (live, and finished in the last 1h)\n")

	// A running bridge is listed, and dispatches the backlog (its catch-up
	// on start finds it). A poll interval of 2s: a bridge is alive while it
	// checked in within three of them, which a loaded machine keeps to.
	b := startBridge(t, f.db, "--poll-interval", "2s")
	waitDispatched(t, f.db, 6, 15*time.Second)
	st = statusJSON{}
	f.mustJSON(t, &st, "status", "--window", "1h")
	require.Zero(t, st.Backlog)
	require.Nil(t, st.OldestPendingAge)
	require.Equal(t, map[string]int64{"dispatched": 5, "unrouted": 1}, st.LastMinute)
	require.Equal(t, float64(60*60), st.Window)
	require.Len(t, st.Bridges, 1)
	require.Equal(t, b.cmd.Process.Pid, st.Bridges[0].PID)
	require.True(t, st.Bridges[0].Alive)
	out = f.must(t, "status")
	require.Equal(t, []string{"backlog", "0", "events", "not", "dispatched", "yet"}, line(t, out, "backlog"))
	require.Equal(t, []string{"ID", "HOST", "PID", "VERSION", "RUNNING", "SINCE", "LAST", "SEEN", "STATE"}, line(t, out, "ID"))
	bl := line(t, out, st.Bridges[0].ID)
	require.Equal(t, strconv.Itoa(b.cmd.Process.Pid), bl[2])
	require.Equal(t, "running", bl[len(bl)-1])
	require.Equal(t, exitInterrupt, interrupt(t, b))

	f.fail(t, "--window 0s must be positive", "status", "--window", "0")
	f.fail(t, "--window -1h0m0s must be positive", "status", "--window", "-1h")
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	require.Equal(t, "no dead letters\n", f.must(t, "dead-letters"))
	require.Equal(t, "[]\n", f.must(t, "dead-letters", "--json"))

	w1, w2 := f.job(t, f.signup1, "send_welcome"), f.job(t, f.signup2, "send_welcome")
	ship := f.job(t, f.order, "ship_order")
	crm, crm2 := f.job(t, f.signup1, "sync_crm"), f.job(t, f.signup2, "sync_crm")
	f.finalize(t, w1, "discarded", "smtp down")
	f.finalize(t, w2, "discarded", "smtp down again")
	f.finalize(t, crm, "discarded", "crm 500")
	f.finalize(t, ship, "cancelled", "order void")
	f.finalize(t, crm2, "completed", "")

	// Table: a count per handler, then one line per job, newest first.
	out := f.must(t, "dead-letters")
	lines := strings.Split(out, "\n")
	require.Equal(t, "4 dead letters (send_welcome 2, ship_order 1, sync_crm 1)", lines[0])
	require.Equal(t, "", lines[1])
	require.Equal(t, []string{"JOB", "EVENT", "NAME", "HANDLER", "STATE", "ATTEMPT", "FINALIZED", "ERROR"}, strings.Fields(lines[2]))
	sl := line(t, out, strconv.FormatInt(ship, 10), f.order)
	require.Equal(t, []string{f.order, "order_placed", "ship_order", "cancelled", "1/25"}, sl[1:6])
	require.Equal(t, []string{"order", "void"}, sl[len(sl)-2:])
	l1 := line(t, out, strconv.FormatInt(w1, 10), f.signup1)
	require.Equal(t, []string{f.signup1, "user_signed_up", "send_welcome", "discarded", "1/3"}, l1[1:6])
	require.Equal(t, []string{"smtp", "down"}, l1[len(l1)-2:])
	require.Equal(t, []string{"smtp", "down", "again"}, line(t, out, strconv.FormatInt(w2, 10), f.signup2)[9:], "error of job %d", w2)
	require.Equal(t, []string{"sync_crm", "discarded", "1/25"}, line(t, out, strconv.FormatInt(crm, 10), f.signup1)[3:6])
	require.Equal(t, []string{"JOB", strconv.FormatInt(ship, 10), strconv.FormatInt(crm, 10), strconv.FormatInt(w2, 10), strconv.FormatInt(w1, 10)},
		[]string{strings.Fields(lines[2])[0], strings.Fields(lines[3])[0], strings.Fields(lines[4])[0], strings.Fields(lines[5])[0], strings.Fields(lines[6])[0]},
		"newest first")
	require.True(t, strings.HasSuffix(out, "\nre-run them with `notified-bridge dead-letters retry --reason ... [JOB_ID...]`\n"), out)

	var dead []jobJSON
	f.mustJSON(t, &dead, "dead-letters")
	require.Len(t, dead, 4)
	byID := map[int64]jobJSON{}
	for _, j := range dead {
		byID[j.ID] = j
	}
	require.Equal(t, "cancelled", byID[ship].State)
	require.Equal(t, "order void", *byID[ship].LastError)
	require.Equal(t, f.order, byID[ship].EventID)
	require.Equal(t, "discarded", byID[w1].State)
	require.Equal(t, "smtp down", *byID[w1].LastError)
	require.Equal(t, "send_welcome", byID[w2].Handler)

	// --handler filters, in the table and the JSON.
	out = f.must(t, "dead-letters", "--handler", "ship_order")
	require.True(t, strings.HasPrefix(out, "1 dead letter (ship_order 1)\n"), out)
	require.NotContains(t, out, "send_welcome")
	dead = nil
	f.mustJSON(t, &dead, "dead-letters", "--handler", "send_welcome")
	require.ElementsMatch(t, []int64{w1, w2}, []int64{dead[0].ID, dead[1].ID})
	require.Len(t, dead, 2)
	require.Equal(t, "no dead letters\n", f.must(t, "dead-letters", "--handler", "no_such_handler"))
	require.True(t, strings.HasPrefix(f.must(t, "dead-letters", "--handler", "sync_crm", "--handler", "ship_order"),
		"2 dead letters (ship_order 1, sync_crm 1)\n"))
	require.Equal(t, "no dead letters\n", f.must(t, "dead-letters", "--since", "2099-01-01"))
	require.Len(t, strings.Split(f.must(t, "dead-letters", "--since", "1h"), "\n"), len(lines))

	// --limit shows the newest.
	out = f.must(t, "dead-letters", "--limit", "1")
	require.True(t, strings.HasPrefix(out, "more than 1 dead letters, the newest 1 shown (ship_order 1)\n"), out)
	require.Contains(t, out, "\nshowing the newest 1: use --limit 0 for all\n")
	f.fail(t, "--limit -1 must be 0 (all) or more", "dead-letters", "--limit", "-1")
	f.fail(t, `--since: "soon" is not a time: use RFC 3339 (2026-11-27T10:00:00Z), a date (2026-11-27), or an age (24h)`,
		"dead-letters", "--since", "soon")

	// Retry one job: a new job for only that handler and event, though the
	// event's other handler has a dead letter too.
	before := f.jobs(t)
	// Flags after the job id work as before it.
	out = f.must(t, "dead-letters retry", "--reason", "smtp fixed", strconv.FormatInt(w1, 10))
	require.Regexp(t, `^replay \d+ recorded\n1 event selected: enqueued 1 job for 1 event, 0 skipped \(`, out)
	require.Equal(t, []string{f.signup1, "user_signed_up", "send_welcome"}, line(t, out, f.signup1, "user_signed_up"))
	require.Equal(t, before+1, f.jobs(t))
	retried := f.job(t, f.signup1, "send_welcome")
	require.Greater(t, retried, w1)
	require.Equal(t, crm, f.job(t, f.signup1, "sync_crm"), "no new sync_crm job")
	require.Equal(t, w2, f.job(t, f.signup2, "send_welcome"), "no new job for the other event")
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "river_job")+
		" WHERE id = $1 AND state = 'available' AND (metadata->'notified'->>'replay_id')::bigint > 0", retried))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_replay")+
		" WHERE reason = 'smtp fixed' AND events = 1 AND jobs = 1 AND finished_at IS NOT NULL"))

	dead = nil
	f.mustJSON(t, &dead, "dead-letters")
	require.Len(t, dead, 3)
	require.ElementsMatch(t, []int64{w2, ship, crm}, []int64{dead[0].ID, dead[1].ID, dead[2].ID})
	require.NotContains(t, f.must(t, "dead-letters"), "\n"+strconv.FormatInt(w1, 10)+" ")

	// A dry run needs no reason and changes nothing.
	out = f.must(t, "dead-letters retry", "--dry-run", strconv.FormatInt(w2, 10))
	require.Regexp(t, `^dry run: nothing was changed\n1 event selected: would enqueue 1 job for 1 event, 0 skipped \(`, out)
	require.Equal(t, before+1, f.jobs(t))

	// Errors: nothing to retry, a job that is not (or no longer) a dead
	// letter, an id that is not a number.
	f.fail(t, "dead-letters retry: give the job ids to retry, or --all (with --handler/--since to narrow it)",
		"dead-letters retry", "--reason", "r")
	for _, id := range []int64{crm2, w1, retried, 999999} {
		f.fail(t, fmt.Sprintf("dead-letters retry: job %d is not a dead letter of channel %q (not found, not discarded or cancelled, "+
			"or retried since): see `notified-bridge dead-letters`", id, f.db.Channel),
			"dead-letters retry", "--reason", "r", strconv.FormatInt(id, 10))
	}
	f.fail(t, `dead-letters retry: "abc" is not a job id: give job ids as listed by `+"`notified-bridge dead-letters`",
		"dead-letters retry", "--reason", "r", "abc")
	f.fail(t, "a replay needs a reason, for the record: say why with --reason", "dead-letters retry", strconv.FormatInt(w2, 10))
	f.fail(t, `dead-letters: unexpected argument "7": did you mean `+"`dead-letters retry 7`?", "dead-letters", "7")
	require.Equal(t, before+1, f.jobs(t), "failed retries enqueue nothing")

	// The retried job fails again; --all --handler retries every dead
	// letter of that handler, and no other.
	f.finalize(t, retried, "discarded", "smtp down once more")
	before = f.jobs(t)
	var res replayJSON
	f.mustJSON(t, &res, "dead-letters retry", "--all", "--handler", "send_welcome", "--reason", "smtp fixed for real")
	require.Positive(t, res.ReplayID)
	require.Equal(t, 2, res.Selected)
	require.Equal(t, 2, res.Events)
	require.Equal(t, 2, res.Jobs)
	require.Equal(t, before+2, f.jobs(t))
	require.Greater(t, f.job(t, f.signup1, "send_welcome"), retried)
	require.Greater(t, f.job(t, f.signup2, "send_welcome"), w2)
	require.Equal(t, ship, f.job(t, f.order, "ship_order"))
	require.Equal(t, crm, f.job(t, f.signup1, "sync_crm"))
	dead = nil
	f.mustJSON(t, &dead, "dead-letters")
	require.Len(t, dead, 2)
	require.ElementsMatch(t, []int64{ship, crm}, []int64{dead[0].ID, dead[1].ID})
	require.Equal(t, "no dead letters to retry\n", f.must(t, "dead-letters retry", "--all", "--handler", "send_welcome", "--reason", "r"))

	// --all alone retries the rest, each for its own handler only.
	before = f.jobs(t)
	welcome1 := f.job(t, f.signup1, "send_welcome")
	res = replayJSON{}
	f.mustJSON(t, &res, "dead-letters retry", "--all", "--reason", "everything")
	require.Equal(t, []int{2, 2, 2}, []int{res.Selected, res.Events, res.Jobs})
	require.Equal(t, before+2, f.jobs(t))
	require.Greater(t, f.job(t, f.order, "ship_order"), ship)
	require.Greater(t, f.job(t, f.signup1, "sync_crm"), crm)
	require.Equal(t, welcome1, f.job(t, f.signup1, "send_welcome"))
	require.Equal(t, "no dead letters\n", f.must(t, "dead-letters"))
}

type pruneJSON struct {
	Events  int64 `json:"events"`
	Jobs    int64 `json:"jobs"`
	Replays int64 `json:"replays"`
	Bridges int64 `json:"bridges"`
}

func TestPrune(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old, recent := f.job(t, f.signup1, "send_welcome"), f.job(t, f.order, "ship_order")
	f.finalize(t, old, "discarded", "smtp down")
	f.finalize(t, recent, "completed", "")
	f.must(t, "replay", "--id", f.signup2, "--reason", "old replay")
	f.must(t, "replay", "--id", f.order, "--reason", "recent replay")
	ctx := t.Context()

	// Backdate half of the history by two hours.
	sql := func(sql string, args ...any) {
		t.Helper()
		testdb.Exec(t, f.db.Pool, sql, args...)
	}
	sql("UPDATE "+tbl(f.db, "notified_dispatch")+" SET dispatched_at = now() - interval '2 hours' WHERE event_id = ANY($1)",
		[]string{f.signup1, f.signup2})
	sql("UPDATE "+tbl(f.db, "notified_job")+" SET finalized_at = now() - interval '2 hours' WHERE job_id = $1", old)
	sql("UPDATE " + tbl(f.db, "notified_replay") + " SET started_at = now() - interval '2 hours' WHERE reason = 'old replay'")
	sql("INSERT INTO "+tbl(f.db, "notified_bridge")+" (id, channel, host, pid, version, poll_interval, started_at, seen_at) VALUES "+
		"('stale', $1, 'h', 1, 'v', '5s', now() - interval '3 days', now() - interval '2 days'), "+
		"('fresh', $1, 'h', 2, 'v', '5s', now() - interval '1 minute', now())", f.db.Channel)

	var p pruneJSON
	out := mustRun(t, f.db, "prune", "--retention", "1h", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &p), out)
	require.Equal(t, pruneJSON{Events: 2, Jobs: 1, Replays: 1, Bridges: 1}, p)

	var dispatch []string
	rows, err := f.db.Pool.Query(ctx, "SELECT event_id FROM "+tbl(f.db, "notified_dispatch")+" ORDER BY event_id::bigint")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		dispatch = append(dispatch, id)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{f.order, f.noise}, dispatch)
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_job")+" WHERE job_id = $1", recent))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_job")))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_replay")+" WHERE reason = 'recent replay'"))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_replay")))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_bridge")+" WHERE id = 'fresh'"))
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_bridge")))
	require.Equal(t, 5+2+1, f.jobs(t), "River's jobs (the dispatch's and the replays') are River's to clean")

	// The pruned event's history is gone; the kept one's is whole.
	f.fail(t, fmt.Sprintf("event not found: no event %s on channel %q has been notified (or its history is past the retention)",
		f.signup1, f.db.Channel), "history", f.signup1)
	var ev eventJSON
	f.mustJSON(t, &ev, "history", f.order)
	require.Equal(t, []handlerState{{"ship_order", "completed"}, {"ship_order", "available"}}, handlerStates(ev.Jobs))

	// Nothing left to prune.
	out = mustRun(t, f.db, "prune", "--retention", "1h")
	require.Regexp(t, `^pruned history before .+: 0 events, 0 job outcomes, 0 replays, 0 stale bridges\n$`, out)

	// Forever, or 0, keeps history forever, as for run: nothing is pruned.
	for _, arg := range []string{"forever", "0", "0s"} {
		require.Equal(t, "history is kept forever (--retention forever): nothing pruned\n", mustRun(t, f.db, "prune", "--retention", arg))
	}
	require.Equal(t, 1, count(t, f.db, "SELECT count(*) FROM "+tbl(f.db, "notified_replay")))
}

// startBridgeEnv is startBridge with the environment env (DATABASE_URL
// included) and extra arguments, and the default missing grace, waiting
// until it listens for events.
func startBridgeEnv(t *testing.T, db *testdb.DB, env []string, extraArgs ...string) *bridgeProc {
	t.Helper()
	return startRun(t, binary, env, append(runArgs(db), extraArgs...))
}

// logged returns the attribute attr of the first JSON log line with msg.
func logged(p *bridgeProc, msg, attr string) string {
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			s, _ := rec[attr].(string)
			return s
		}
	}
	return ""
}

func TestRunHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name string
			env  []string
			args []string
			want string
		}{
			{"open to the network without a password", nil, []string{"--http-addr", "0.0.0.0:0"},
				"web UI would be open to the network without a password: --http-addr 0.0.0.0:0 listens on 0.0.0.0; " +
					"set NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, listen on 127.0.0.1, or pass --insecure-ui"},
			{"every interface", nil, []string{"--http-addr", ":0"},
				"web UI would be open to the network without a password: --http-addr :0 listens on every interface; " +
					"set NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, listen on 127.0.0.1, or pass --insecure-ui"},
			{"user without password", []string{"NOTIFIED_UI_USER=admin"}, []string{"--http-addr", "127.0.0.1:0"},
				"set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither"},
			{"password without user", []string{"NOTIFIED_UI_PASSWORD=s3cret"}, []string{"--http-addr", "0.0.0.0:0"},
				"set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither"},
			{"not an address", nil, []string{"--http-addr", "8080"},
				`--http-addr "8080" is not host:port or :port: address 8080: missing port in address`},
			{"allowed host that is a URL", nil, []string{"--http-addr", "127.0.0.1:0", "--ui-allowed-host", "ok.example", "--ui-allowed-host", "https://notified.example.com"},
				`--ui-allowed-host / NOTIFIED_UI_ALLOWED_HOSTS: "https://notified.example.com" is not a host name, IP address or host:port: ` +
					"give the name alone, without scheme or path, e.g. notified.example.com"},
			{"allowed host with a bad port", []string{"NOTIFIED_UI_ALLOWED_HOSTS=ok.example,notified.example.com:http"}, []string{"--http-addr", "127.0.0.1:0"},
				`--ui-allowed-host / NOTIFIED_UI_ALLOWED_HOSTS: "notified.example.com:http": port "http" is not a number`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := append([]string{"--schema", f.db.Schema, "run", "--table", f.db.Events(), "--channel", f.db.Channel}, tc.args...)
				stdout, stderr, code := runEnv(t, append(envWithURL(f.db.URL), tc.env...), args...)
				requireUserError(t, stderr, code)
				require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr)
				require.NotContains(t, stderr, "s3cret")
				require.Empty(t, stdout)
			})
		}
	})

	t.Run("serves", func(t *testing.T) {
		t.Parallel()
		env := append(envWithURL(f.db.URL), "NOTIFIED_UI_USER=admin", "NOTIFIED_UI_PASSWORD=s3cret",
			"NOTIFIED_UI_ALLOWED_HOSTS=notified.example.com,,proxy.example:8443,")
		b := startBridgeEnv(t, f.db, env, "--http-addr", "127.0.0.1:0")
		var addr string
		testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
			addr = logged(b, "http server listening", "addr")
			return addr != "", "bridge logs the web UI's address"
		})
		client := &http.Client{Timeout: 5 * time.Second}
		get := func(path, user, password string) (int, []byte, error) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
			require.NoError(t, err)
			if user != "" {
				req.SetBasicAuth(user, password)
			}
			resp, err := client.Do(req)
			if err != nil {
				return 0, nil, err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return resp.StatusCode, body, err
		}
		path := "/api/events/" + f.signup1
		testdb.WaitFor(t, 10*time.Second, func() (bool, string) {
			_, _, err := get(path, "", "")
			return err == nil, fmt.Sprintf("GET %s: %v", path, err)
		})

		code, body, err := get(path, "", "")
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, code, string(body))
		require.NotContains(t, string(body), f.signup1+`"`)
		code, body, err = get(path, "admin", "wrong")
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, code, string(body))

		code, body, err = get(path, "admin", "s3cret")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, string(body))
		var ev eventJSON
		require.NoError(t, json.Unmarshal(body, &ev), string(body))
		require.Equal(t, f.signup1, ev.ID)
		require.Equal(t, "dispatched", ev.Outcome)
		require.Equal(t, []handlerState{{"send_welcome", "available"}, {"sync_crm", "available"}}, handlerStates(ev.Jobs))

		code, body, err = get("/riverui/", "", "")
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, code, "River UI without credentials: %s", body)
		code, body, err = get("/riverui/", "admin", "s3cret")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "River UI: %s", body)

		code, body, err = get("/api/events/999999", "admin", "s3cret")
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, code, string(body))

		// Host names and origins, with the credentials a browser resends.
		send := func(method, path, host string, hdr map[string]string, body string) (int, string) {
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, strings.NewReader(body))
			require.NoError(t, err)
			req.Host = host
			req.SetBasicAuth("admin", "s3cret")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp.StatusCode, string(b)
		}
		for _, host := range []string{"notified.example.com", "Notified.Example.com:443", "proxy.example:8443", "localhost:8080", addr} {
			code, text := send(http.MethodGet, path, host, nil, "")
			require.Equal(t, http.StatusOK, code, "Host: %s: %s", host, text)
		}
		for _, host := range []string{"evil.example:8080", "proxy.example:9000", "10.1.2.3:8080"} {
			code, text := send(http.MethodGet, path, host, nil, "")
			require.Equal(t, http.StatusForbidden, code, "Host: %s: %s", host, text)
			name, _, _ := strings.Cut(host, ":")
			require.Contains(t, text, `add "`+name+`" to --ui-allowed-host (NOTIFIED_UI_ALLOWED_HOSTS)`)
		}
		for _, p := range []string{"/healthz", "/metrics"} {
			code, text := send(http.MethodGet, p, "10.1.2.3:8080", nil, "")
			require.Equal(t, http.StatusOK, code, "%s for the pod IP: %s", p, text)
		}
		cancel := `{"ids":["` + strconv.FormatInt(ev.Jobs[0].ID, 10) + `"]}`
		code, text := send(http.MethodPost, "/riverui/api/jobs/cancel", addr,
			map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, cancel)
		require.Equal(t, http.StatusForbidden, code, text)
		require.Contains(t, text, "cross-origin request detected from Sec-Fetch-Site header")
		code, text = send(http.MethodPost, "/healthz", addr, map[string]string{"Sec-Fetch-Site": "cross-site"}, "")
		require.Equal(t, http.StatusForbidden, code, "cross-site POST to an ops endpoint: %s", text)
		require.Equal(t, 1, testdb.Count(t, f.db.Pool, "SELECT count(*) FROM "+f.db.Schema+".river_job WHERE id = $1 AND state = 'available'", ev.Jobs[0].ID),
			"the job the cross-site request tried to cancel is still available")

		require.Equal(t, exitInterrupt, interrupt(t, b), "exit code after SIGINT")
		require.NotContains(t, b.stderr.String(), "s3cret", "the password leaked into the log")
		_, _, err = get(path, "admin", "s3cret")
		require.Error(t, err, "the web UI stopped with the bridge")
	})
}

func TestNewCommandsHelp(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoMigrate: true, NoEventsTable: true})

	out := mustRun(t, db, "--help")
	commands := map[string]string{
		"history":      "show what became of an event: its outcome, its row, and every handler's job",
		"status":       "show the backlog, recent throughput, jobs per handler, failing handlers and running bridges",
		"replay":       "dispatch recorded events again, as new jobs for today's routes, selected by id, range, name, time or outcome",
		"dead-letters": "list jobs that ended discarded or cancelled and were not retried since; `dead-letters retry` re-runs them",
		"prune":        "delete history older than --retention now (running bridges also prune every hour)",
	}
	for name, usage := range commands {
		require.Equal(t, append([]string{name}, strings.Fields(usage)...), line(t, out, name), "--help lists %s", name)
	}
	require.Equal(t, []string{"retry", "re-run", "dead", "letters", "as", "new", "jobs:"}, line(t, mustRun(t, db, "dead-letters", "--help"), "retry")[:7])
	require.Contains(t, line(t, mustRun(t, db, "run", "--help"), "--http-addr", "ADDR"), "127.0.0.1:8080;")

	for _, tc := range []struct {
		command []string
		flags   []string
	}{
		{[]string{"history"}, []string{"--json", "--channel", "--table"}},
		{[]string{"status"}, []string{"--json", "--channel", "--window"}},
		{[]string{"replay"}, []string{"--id", "--from-id", "--to-id", "--name", "--since", "--until", "--outcome", "--job-state",
			"--handler", "--reason", "--dry-run", "--json"}},
		{[]string{"dead-letters"}, []string{"--handler", "--since", "--json", "--limit"}},
		{[]string{"dead-letters", "retry"}, []string{"--all", "--handler", "--since", "--reason", "--dry-run", "--json"}},
		{[]string{"prune"}, []string{"--retention", "--json"}},
	} {
		for _, help := range [][]string{append(slices.Clone(tc.command), "--help"), append(slices.Clone(tc.command), "-h")} {
			out, stderr, code := run(t, db, help...)
			require.Equal(t, 0, code, "%q: %s", help, stderr)
			require.Empty(t, stderr, "%q", help)
			require.Contains(t, out, "notified-bridge "+strings.Join(tc.command, " "), "%q", help)
			require.Contains(t, out, "USAGE:")
			for _, fl := range tc.flags {
				require.Contains(t, out, "   "+fl+" ", "%q documents %s", help, fl)
			}
		}
	}
}

// TestHistoryShowsWhatTheHandlersReceived: the current row is the row as it
// is now; each job's data is the row as its handler received it, while
// River has the job, and nothing once River deleted it.
func TestHistoryShowsWhatTheHandlersReceived(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	welcome, crm := f.job(t, f.signup1, "send_welcome"), f.job(t, f.signup1, "sync_crm")
	testdb.Exec(t, f.db.Pool, "UPDATE "+f.db.Events()+` SET payload = '{"k": "changed"}' WHERE id = $1::bigint`, f.signup1)
	f.finalize(t, crm, "completed", "")
	testdb.Exec(t, f.db.Pool, "DELETE FROM "+tbl(f.db, "river_job")+" WHERE id = $1", crm) // River's cleaner

	out := f.must(t, "history", f.signup1)
	require.Contains(t, strings.Join(line(t, out, "current", "row"), " "), `"payload":{"k": "changed"}`)
	require.Contains(t, out, "\ndata the handlers received (kept while River keeps the job):\n")
	wl := strings.Join(line(t, out, "job", strconv.FormatInt(welcome, 10)), " ")
	require.Contains(t, wl, `"payload": {"k": "v"}`, "the row as dispatched")
	require.Equal(t, []string{"job", strconv.FormatInt(crm, 10), "not", "kept:", "River", "deleted", "the", "job"},
		line(t, out, "job", strconv.FormatInt(crm, 10)))

	var ev eventJSON
	f.mustJSON(t, &ev, "history", f.signup1)
	require.Equal(t, map[string]any{"k": "changed"}, ev.Data["payload"])
	require.Equal(t, []handlerState{{"send_welcome", "available"}, {"sync_crm", "completed"}}, handlerStates(ev.Jobs))
	require.Equal(t, map[string]any{"k": "v"}, ev.Jobs[0].Data["payload"])
	require.Nil(t, ev.Jobs[1].Data)
	require.NotContains(t, f.must(t, "history", "--json", f.signup1), `"data": null`, "no data for a deleted job: the key is left out")
}
