package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// deadLetter dispatches event 42 to two handlers and makes the job of
// send_receipt a dead letter, as River does when it discards a job.
func (tb *testBundle) deadLetter(t *testing.T) (dispatchedEvent, int64) {
	t.Helper()
	ev := tb.dispatchEvent(t)
	job := ev.jobs["send_receipt"]
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.db.Schema+`.river_job SET state = 'discarded', finalized_at = now(),
		attempt = 3, max_attempts = 3, attempted_at = now(),
		errors = ARRAY[jsonb_build_object('at', now(), 'attempt', 3, 'error', 'SMTP said no')] WHERE id = $1`, job)
	return ev, job
}

// insertDispatch records event id as the bridge does, with outcome.
func (tb *testBundle) insertDispatch(t *testing.T, id, name, outcome string) {
	t.Helper()
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_dispatch
		(channel, event_id, event_name, outcome, reason, notified_at) VALUES ($1, $2, $3, $4, 'no row with this id in the events table', now())`,
		tb.db.Channel, id, name, outcome)
}

// replays returns the replays recorded, as "requested_by: reason".
func (tb *testBundle) replays(t *testing.T) []string {
	t.Helper()
	rows, err := tb.db.Pool.Query(context.Background(), `SELECT requested_by || ': ' || reason FROM `+tb.db.Schema+`.notified_replay ORDER BY id`)
	require.NoError(t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

// sameOrigin are the headers a browser sends with a form of the UI's own.
func sameOrigin(ts string) map[string]string {
	return map[string]string{"Origin": ts, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
}

// listedEvents serves the UI over three events: 42 dispatched to two
// handlers, 1001 missing and "oops" rejected.
func listedEvents(t *testing.T) *httptest.Server {
	t.Helper()
	tb := setup(t)
	tb.dispatchEvent(t)
	tb.insertDispatch(t, "1001", "user_signed_up", "missing")
	tb.insertDispatch(t, "oops", "", "rejected")
	return serve(t, tb.newServer(t, "", ""))
}

func TestEventsListPage(t *testing.T) {
	t.Parallel()
	ts := listedEvents(t)

	r := get(t, ts, "/events", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, 3, strings.Count(r.body, `<tr class="event">`))
	require.Contains(t, r.body, `<a href="/events/42" class="mono">42</a>`)
	require.Contains(t, r.body, `<a href="/events" class="on">Events</a>`)
	require.NotContains(t, r.body, `id="older"`)

	require.Equal(t, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		r.header.Get("Content-Security-Policy"))

	r = get(t, ts, "/events?outcome=missing", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, 1, strings.Count(r.body, `<tr class="event">`), r.body)
	require.Contains(t, r.body, `/events/1001`)
	require.Contains(t, r.body, `<option selected>missing</option>`)

	r = get(t, ts, "/events?name=order_placed&handler=update_stock", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, 1, strings.Count(r.body, `<tr class="event">`), r.body)

	// Paging: one a page, by keyset links.
	r = get(t, ts, "/events?limit=1", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	seen := []string{}
	for range 3 {
		require.Equal(t, 1, strings.Count(r.body, `<tr class="event">`), r.body)
		i := strings.Index(r.body, `<a href="/events/`)
		seen = append(seen, r.body[i+len(`<a href="/events/`):][:4])
		j := strings.Index(r.body, `id="older" href="`)
		if j < 0 {
			break
		}
		next := r.body[j+len(`id="older" href="`):]
		next = strings.ReplaceAll(next[:strings.Index(next, `"`)], "&amp;", "&")
		r = get(t, ts, next, "", "")
		require.Equal(t, http.StatusOK, r.code)
		require.Contains(t, r.body, "← Newest")
	}
	require.Equal(t, []string{"oops", "1001", `42" `}, seen)

	for _, c := range []struct{ query, want string }{
		{"outcome=lost", `outcome &#34;lost&#34; is not one of dispatched, unrouted, missing, rejected`},
		{"state=dead", `job state &#34;dead&#34; is not one of`},
		{"since=yesterday", `from: &#34;yesterday&#34; is not a time: use YYYY-MM-DDTHH:MM (UTC) or RFC 3339`},
		{"until=soon", `until: &#34;soon&#34; is not a time`},
		{"since=2026-01-02T00:00&until=2026-01-01T00:00", "time range is empty"},
		{"limit=0", `page size &#34;0&#34; is not a number from 1 to 500`},
		{"after_at=x&after_id=1", "the link to the next page is damaged"},
	} {
		r := get(t, ts, "/events?"+c.query, "", "")
		require.Equal(t, http.StatusBadRequest, r.code, c.query)
		require.Contains(t, r.body, `<div class="alert err">`, c.query)
		require.Contains(t, r.body, c.want, c.query)
	}
}

// TestEventsListJSON: /api/events answers with the list's events and
// filters, pages by its "next" URL, and says what is wrong with a filter.
func TestEventsListJSON(t *testing.T) {
	t.Parallel()
	ts := listedEvents(t)

	type page struct {
		Events []struct {
			ID      string `json:"event_id"`
			Outcome string `json:"outcome"`
		} `json:"events"`
		Next *string `json:"next"`
	}
	read := func(path string) page {
		t.Helper()
		r := get(t, ts, path, "", "")
		require.Equal(t, http.StatusOK, r.code, r.body)
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var p page
		require.NoError(t, json.Unmarshal([]byte(r.body), &p), r.body)
		return p
	}
	p := read("/api/events")
	require.Len(t, p.Events, 3)
	require.Nil(t, p.Next)
	p = read("/api/events?outcome=missing")
	require.Len(t, p.Events, 1)
	require.Equal(t, "1001", p.Events[0].ID)
	require.Equal(t, "missing", p.Events[0].Outcome)
	p = read("/api/events?outcome=unrouted")
	require.NotNil(t, p.Events, "an empty page is a list, not null")
	require.Empty(t, p.Events)

	var seen []string
	for p, n := read("/api/events?limit=1"), 0; ; n++ {
		require.Less(t, n, 3)
		require.Len(t, p.Events, 1)
		seen = append(seen, p.Events[0].ID)
		if p.Next == nil {
			break
		}
		require.True(t, strings.HasPrefix(*p.Next, "/api/events?"), *p.Next)
		p = read(*p.Next)
	}
	require.Equal(t, []string{"oops", "1001", "42"}, seen)

	r := get(t, ts, "/api/events?outcome=lost", "", "")
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.body), &body))
	require.Contains(t, body["error"], `outcome "lost" is not one of dispatched, unrouted, missing, rejected`)
}

func TestFailedPageRetriesADeadLetter(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ev, job := tb.deadLetter(t)
	tb.insertDispatch(t, "1001", "user_signed_up", "missing")
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))

	r := get(t, ts, "/failed", "admin", "s3cret")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, fmt.Sprintf(`<a href="/riverui/jobs/%d">%d</a>`, job, job))
	require.Contains(t, r.body, "SMTP said no")
	require.Contains(t, r.body, `<input type="hidden" name="job_id" value="`+strconv.FormatInt(job, 10)+`">`)
	require.Contains(t, r.body, `action="/failed/replay"`)
	require.Contains(t, r.body, `/events/1001`)

	form := url.Values{"job_id": {strconv.FormatInt(job, 10)}, "reason": {"SMTP is back"}, "channel": {tb.db.Channel}}
	r = send(t, ts, http.MethodPost, "/failed/retry", strings.TrimPrefix(ts.URL, "http://"), "admin", sameOrigin(ts.URL), form.Encode())
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Regexp(t, `^/replays/\d+\?done=1$`, r.header.Get("Location"))
	require.Equal(t, []string{"admin (web UI) from 127.0.0.1: SMTP is back"}, tb.replays(t))

	r = get(t, ts, r.header.Get("Location"), "admin", "s3cret")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<div class="alert ok" id="done">`)
	require.Contains(t, r.body, "1 job made for 1 event")
	newJobs := tb.jobIDs(t, "send_receipt")
	require.Len(t, newJobs, 2)
	require.Contains(t, r.body, fmt.Sprintf(`<a href="/riverui/jobs/%d">%d</a>`, newJobs[1], newJobs[1]))
	require.Contains(t, r.body, `<a href="/events/`+ev.id+`" class="mono">`+ev.id+`</a>`)

	// Retried: no longer a dead letter, and not retried twice.
	r = get(t, ts, "/failed", "admin", "s3cret")
	require.Contains(t, r.body, "No dead letters.")
	r = send(t, ts, http.MethodPost, "/failed/retry", strings.TrimPrefix(ts.URL, "http://"), "admin", sameOrigin(ts.URL), form.Encode())
	require.Equal(t, http.StatusConflict, r.code, r.body)
	require.Contains(t, r.body, fmt.Sprintf("job %d is not a dead letter of channel", job))
	require.Len(t, tb.replays(t), 1)
}

func TestReplayFormErrors(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, job := tb.deadLetter(t)
	tb.insertDispatch(t, "1001", "user_signed_up", "missing")
	ts := serve(t, tb.newServer(t, "", ""))
	host := strings.TrimPrefix(ts.URL, "http://")
	post := func(path string, form url.Values) response {
		return send(t, ts, http.MethodPost, path, host, "", sameOrigin(ts.URL), form.Encode())
	}
	jobID := strconv.FormatInt(job, 10)

	for _, c := range []struct {
		path string
		form url.Values
		code int
		want string
	}{
		{"/failed/retry", url.Values{"job_id": {jobID}, "reason": {"  "}}, http.StatusBadRequest, "a replay needs a reason, for the record: say why in the reason field"},
		{"/failed/replay", url.Values{"event_id": {"42"}}, http.StatusBadRequest, "a replay needs a reason"},
		{"/failed/retry", url.Values{"job_id": {jobID}, "reason": {strings.Repeat("x", 1001)}}, http.StatusBadRequest, "the reason is 1001 bytes long: keep it under 1000"},
		{"/failed/retry", url.Values{"job_id": {"nope"}, "reason": {"r"}}, http.StatusBadRequest, "&#34;nope&#34; is not a job id"},
		{"/failed/retry", url.Values{"job_id": {"999999"}, "reason": {"r"}}, http.StatusConflict, "job 999999 is not a dead letter"},
		{"/failed/replay", url.Values{"reason": {"r"}}, http.StatusBadRequest, "the form names no event"},
		// The row of a missing event is still missing: nothing to replay.
		{"/failed/replay", url.Values{"event_id": {"1001"}, "reason": {"r"}}, http.StatusUnprocessableEntity, "nothing to replay: no row"},
		{"/failed/replay", url.Values{"event_id": {"777"}, "reason": {"r"}}, http.StatusUnprocessableEntity, "nothing to replay: the selector matches no event recorded on channel"},
	} {
		r := post(c.path, c.form)
		require.Equal(t, c.code, r.code, "%s %v: %s", c.path, c.form, r.body)
		require.Contains(t, r.body, c.want, "%s %v", c.path, c.form)
		require.Contains(t, r.body, "nothing", "the error page says nothing was done")
	}
	r := send(t, ts, http.MethodPost, "/failed/replay", host, "", sameOrigin(ts.URL), "reason="+strings.Repeat("a", 20<<10))
	require.Equal(t, http.StatusBadRequest, r.code)
	require.Contains(t, r.body, "the form could not be read (http: request body too large): nothing was replayed")
	require.Empty(t, tb.replays(t))

	// An event replayed from its page, with no credentials configured.
	r = post("/failed/replay", url.Values{"event_id": {"42"}, "reason": {"templates fixed"}, "channel": {tb.db.Channel}})
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, []string{"web UI from 127.0.0.1: templates fixed"}, tb.replays(t))
}

func TestCrossSiteReplayRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	_, job := tb.deadLetter(t)
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))
	form := url.Values{"job_id": {strconv.FormatInt(job, 10)}, "reason": {"pwned"}}.Encode()
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, hdr := range []map[string]string{
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"},
		{"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
	} {
		for _, path := range []string{"/failed/retry", "/failed/replay"} {
			r := send(t, ts, http.MethodPost, path, host, "admin", hdr, form+"&event_id=42")
			require.Equal(t, http.StatusForbidden, r.code, r.body)
			require.Contains(t, r.body, "403 forbidden: cross-origin request")
		}
	}
	require.Empty(t, tb.replays(t))
	require.Equal(t, "discarded", tb.jobState(t, job))
}

func TestJobRedirect(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ev := tb.dispatchEvent(t)
	ts := serve(t, tb.newServer(t, "", ""))

	r := get(t, ts, fmt.Sprintf("/jobs/%d", ev.jobs["update_stock"]), "", "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/events/42", r.header.Get("Location"))

	// A job of another channel goes to the event on that channel.
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.db.Schema+`.river_job SET metadata = jsonb_set(metadata, '{notified,channel}', '"other channel"') WHERE id = $1`, ev.jobs["send_receipt"])
	r = get(t, ts, fmt.Sprintf("/jobs/%d", ev.jobs["send_receipt"]), "", "")
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/events/42?channel=other+channel", r.header.Get("Location"))

	r = get(t, ts, "/jobs/999999", "", "")
	require.Equal(t, http.StatusNotFound, r.code, r.body)
	require.Contains(t, r.body, "no job 999999 of notified&#39;s")
	r = get(t, ts, "/jobs/abc", "", "")
	require.Equal(t, http.StatusNotFound, r.code, r.body)
	require.Contains(t, r.body, "&#34;abc&#34; is not a job id")
	r = get(t, ts, "/replays/abc", "", "")
	require.Equal(t, http.StatusNotFound, r.code, r.body)
	r = get(t, ts, "/replays/12345", "", "")
	require.Equal(t, http.StatusNotFound, r.code, r.body)
	require.Contains(t, r.body, "no replay 12345")
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.deadLetter(t) // a bridge runs
	for id := int64(100); id < 103; id++ {
		testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Schema+`.notified_outbox (channel, event_id, created_at) VALUES ($1, $2, now() - interval '1 hour')`, tb.db.Channel, strconv.FormatInt(id, 10))
	}
	ts := serve(t, tb.newServer(t, "", ""))
	r := get(t, ts, "/status", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<a href="/status" class="on">Status</a>`)
	require.Regexp(t, `<div class="v" id="backlog">\d+</div>`, r.body)
	require.Contains(t, r.body, `<div class="v" id="lag">60 min</div>`)
	require.Contains(t, r.body, `<tr class="handler"><td><span class="name">send_receipt</span> <span class="badge b-discarded">failing</span>`)
	require.Contains(t, r.body, "SMTP said no")
	require.Contains(t, r.body, `<tr class="bridge">`)
	require.Contains(t, r.body, `<span class="badge b-alive">alive</span>`)

	r = get(t, ts, "/", "", "")
	require.Contains(t, r.body, `<a class="card stat" href="/status">`)
	require.Contains(t, r.body, `<a href="/status">Status</a>`)
}

func TestHostileNamesRenderInert(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	hostile := "<script>alert(1)</script>\u202egnp.exe\x07" + strings.Repeat("Ω", 5000) + `" onmouseover="alert(2)`
	tb.insertDispatch(t, "<img src=x onerror=alert(3)>", hostile, "missing")
	ts := serve(t, tb.newServer(t, "", ""))

	// Filtered by the name, the list finds it (the filter's input field
	// shows the name as typed, escaped for its attribute).
	r := get(t, ts, "/events?name="+url.QueryEscape(hostile), "", "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, 1, strings.Count(r.body, `<tr class="event">`))
	require.NotContains(t, r.body, "<script>alert")
	require.NotContains(t, r.body, `" onmouseover="alert`)

	for _, path := range []string{"/events", "/failed", "/events/" + url.PathEscape("<img src=x onerror=alert(3)>")} {
		r := get(t, ts, path, "", "")
		require.Equal(t, http.StatusOK, r.code, path)
		for _, bad := range []string{"<script>alert", "<img src=x", "\u202e", "\x07", `" onmouseover="alert`, strings.Repeat("Ω", 400)} {
			require.False(t, strings.Contains(r.body, bad), "%s renders %q as it is", path, bad)
		}
		require.Contains(t, r.body, `&lt;script&gt;alert(1)&lt;/script&gt;\u202egnp.exe\u0007ΩΩΩ`, path)
		require.Contains(t, r.body, `&lt;img src=x onerror=alert(3)&gt;`, path)
	}
}
