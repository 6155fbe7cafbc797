package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

// TestEventPageShowsLanes: an ordered route's jobs show their lane on the
// event page: the route's key, a waiting job's stopped lane and the failed
// job it stopped at; a hostile key renders inert.
func TestEventPageShowsLanes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Add(context.Background(),
		routes.Route{Event: "order_event", Kind: "fulfil", OrderedBy: "$.payload.order_id", OnFailure: routes.OnFailureStop}))
	tb.startBridge(t)
	for _, id := range []int64{1, 2} {
		testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Events()+` (id, name, payload) VALUES ($1, 'order_event',
			jsonb_build_object('order_id', '<img src=x onerror=alert(1)>'))`, id)
	}
	tb.waitDispatched(t, "1")
	tb.waitDispatched(t, "2")
	ids := tb.jobIDs(t, "fulfil")
	require.Len(t, ids, 2)
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.db.Schema+`.river_job SET state = 'discarded', finalized_at = now(), attempt = 1 WHERE id = $1`, ids[0])

	ts := serve(t, tb.newServer(t, "", ""))
	r := get(t, ts, "/events/2", "", "")
	require.Equal(t, 200, r.code, r.body)
	require.Contains(t, r.body, `(ordered by <code>$.payload.order_id</code>)`)
	require.Contains(t, r.body, `lane <code>&#34;&lt;img src=x onerror=alert(1)&gt;&#34;</code>: waits; the lane is stopped at failed job <a href="/jobs/`+
		strconv.FormatInt(ids[0], 10)+`">`)
	require.NotContains(t, r.body, "<img")

	r = get(t, ts, "/events/1", "", "")
	require.Equal(t, 200, r.code, r.body)
	require.Contains(t, r.body, `the lane stopped at this discarded job`)
}

// TestFailedPageResumesAStoppedLane: /failed lists the lanes stopped at a
// failure with a form to resume them; resuming needs a reason, releases
// the next job, and cannot be done twice or from another site.
func TestFailedPageResumesAStoppedLane(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Add(context.Background(),
		routes.Route{Event: "order_event", Kind: "fulfil", OrderedBy: "$.payload.order_id", OnFailure: routes.OnFailureStop}))
	tb.startBridge(t)
	for _, id := range []int64{1, 2} {
		testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Events()+` (id, name, payload) VALUES ($1, 'order_event', '{"order_id": 7}')`, id)
	}
	tb.waitDispatched(t, "1")
	tb.waitDispatched(t, "2")
	ids := tb.jobIDs(t, "fulfil")
	require.Len(t, ids, 2)
	testdb.Exec(t, tb.db.Pool, `UPDATE `+tb.db.Schema+`.river_job SET state = 'cancelled', finalized_at = now(), attempt = 1 WHERE id = $1`, ids[0])
	ts := serve(t, tb.newServer(t, "admin", "s3cret"))
	host := strings.TrimPrefix(ts.URL, "http://")

	r := get(t, ts, "/failed", "admin", "s3cret")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<table id="stopped-lanes">`)
	require.Contains(t, r.body, `<input type="hidden" name="kind" value="fulfil"><input type="hidden" name="key" value="7">`)

	r = get(t, ts, "/status", "admin", "s3cret")
	require.Contains(t, r.body, `<table id="lanes">`)
	require.Contains(t, r.body, `<td class="num"><a href="/failed">1</a></td>`, "the stopped lane links to /failed")

	form := url.Values{"kind": {"fulfil"}, "key": {"7"}, "channel": {tb.db.Channel}}
	r = send(t, ts, http.MethodPost, "/failed/resume", host, "admin", sameOrigin(ts.URL), form.Encode())
	require.Equal(t, http.StatusBadRequest, r.code, r.body)
	require.Contains(t, r.body, "resuming a lane needs a reason")

	form.Set("reason", "refunded")
	r = send(t, ts, http.MethodPost, "/failed/resume", host, "admin", map[string]string{"Origin": "https://evil.example",
		"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	require.Equal(t, http.StatusForbidden, r.code, r.body)

	r = send(t, ts, http.MethodPost, "/failed/resume", host, "admin", sameOrigin(ts.URL), form.Encode())
	require.Equal(t, http.StatusSeeOther, r.code, r.body)
	require.Equal(t, "/failed?resumed=lane+7+of+fulfil", r.header.Get("Location"))
	var state string
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(), "SELECT state::text FROM "+tb.db.Schema+".river_job WHERE id = $1", ids[1]).Scan(&state))
	require.Equal(t, "available", state)
	r = get(t, ts, r.header.Get("Location"), "admin", "s3cret")
	require.Contains(t, r.body, `<div class="alert ok" id="resumed">lane 7 of fulfil resumed.</div>`)
	require.Contains(t, r.body, "No stopped lanes.")

	r = send(t, ts, http.MethodPost, "/failed/resume", host, "admin", sameOrigin(ts.URL), form.Encode())
	require.Equal(t, http.StatusConflict, r.code, r.body)
	require.Contains(t, r.body, "nothing was resumed")
}
