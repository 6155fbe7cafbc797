package bridge_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

// addRoute adds a route with a filter (or none).
func (tb *testBundle) addRoute(t testing.TB, event, kind, where string) {
	t.Helper()
	require.NoError(t, routes.NewStore(tb.DB.Pool, tb.DB.Schema).Add(context.Background(),
		routes.Route{Event: event, Kind: kind, Where: where}))
}

// insertPayloads inserts one event named name per JSON payload (a nil
// payload: a NULL) into the bundle's events table and returns their ids.
func (tb *testBundle) insertPayloads(t testing.TB, name string, payloads ...*string) []string {
	t.Helper()
	ids := make([]string, len(payloads))
	for i, p := range payloads {
		require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
			"INSERT INTO "+tb.Config.Table+" (name, payload) VALUES ($1, $2::jsonb) RETURNING id::text", name, p).Scan(&ids[i]))
	}
	return ids
}

// routeSet reads the route set recorded for event id.
func (tb *testBundle) routeSet(t testing.TB, id string) []history.Route {
	t.Helper()
	var raw []byte
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(),
		"SELECT jobs FROM "+tb.DB.Schema+".notified_dispatch WHERE event_id = $1", id).Scan(&raw))
	var rs []history.Route
	require.NoError(t, json.Unmarshal(raw, &rs))
	return rs
}

// skips says, per handler of a route set, why it was skipped ("" if not).
func skips(rs []history.Route) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[r.Handler] = r.Skipped
	}
	return out
}

func js(s string) *string { return &s }

// TestFiltersChooseHandlers: each route's filter is evaluated on the row as
// the handler receives it; a route whose filter does not match, or cannot
// be evaluated on the row, gets no job, and the record says which; a route
// without a filter always gets its job; hostile rows do not stop the batch.
func TestFiltersChooseHandlers(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addRoute(t, "order_placed", "big", "$.payload.total > 1000")
	tb.addRoute(t, "order_placed", "fr", `strict $.payload.country == "FR"`)
	tb.addRoute(t, "order_placed", "ship", "")
	tb.addRoute(t, "order_placed", "named", `$.name == "order_placed" && $.id > 0`)
	tb.addRoute(t, "refund", "audit", "$.payload.amount > 100")

	const (
		match = ""
		no    = history.SkippedByFilter
		fail  = history.SkippedByFilterError
	)
	cases := []struct {
		payload *string
		want    map[string]string // handler -> skipped
	}{
		{js(`{"total": 5000, "country": "FR"}`), map[string]string{"big": match, "fr": match, "ship": match, "named": match}},
		{js(`{"total": 10, "country": "DE"}`), map[string]string{"big": no, "fr": no, "ship": match, "named": match}},
		{js(`{"total": 10}`), map[string]string{"big": no, "fr": fail, "ship": match, "named": match}}, // strict: no key
		{js(`{}`), map[string]string{"big": no, "fr": fail, "ship": match, "named": match}},            // lax: no key, no match
		{nil, map[string]string{"big": no, "fr": fail, "ship": match, "named": match}},                 // NULL payload
		{js(`{"total": "lots", "country": 33}`), map[string]string{"big": fail, "fr": fail, "ship": match, "named": match}},
		{js(`{"total": 1e300, "country": ["FR"]}`), map[string]string{"big": match, "fr": fail, "ship": match, "named": match}},
		{js(`{"total": -1e-300}`), map[string]string{"big": no, "fr": fail, "ship": match, "named": match}},
		{js(`{"total": [1, 2000]}`), map[string]string{"big": match, "fr": fail, "ship": match, "named": match}}, // lax: any element
		{js(`{"total": [[5000]], "country": {"FR": true}}`), map[string]string{"big": fail, "fr": fail, "ship": match, "named": match}},
		{js(`{"total": {"amount": 5000}}`), map[string]string{"big": fail, "fr": fail, "ship": match, "named": match}},
		{js(`[1, 2, 3]`), map[string]string{"big": no, "fr": fail, "ship": match, "named": match}},
		{js(`"` + strings.Repeat("x", 10000) + `"`), map[string]string{"big": no, "fr": fail, "ship": match, "named": match}},
	}
	payloads := make([]*string, len(cases))
	for i, c := range cases {
		payloads[i] = c.payload
	}
	ids := tb.insertPayloads(t, "order_placed", payloads...)
	refunds := tb.insertPayloads(t, "refund", js(`{"amount": 500}`), js(`{"amount": 5}`))
	b, sigs := tb.startWatched(t, tb.Config)
	all := len(ids) + len(refunds)
	tb.WaitRecorded(t, all)
	waitAccounted(t, sigs, all)

	got := tb.Outcomes(t)
	want := map[string][]string{}
	for i, c := range cases {
		id := ids[i]
		require.Equal(t, history.OutcomeDispatched, got[id].Outcome, "event %s", id)
		require.Empty(t, got[id].Reason, "event %s", id)
		require.Equal(t, c.want, skips(tb.routeSet(t, id)), "route set of event %s, payload %v", id, c.payload)
		for kind, skipped := range c.want {
			if skipped == match {
				want[id] = append(want[id], kind)
			}
		}
	}
	// Every route set carries the routes' filters as they were.
	rs := tb.routeSet(t, ids[0])
	require.Len(t, rs, 4)
	require.Equal(t, "$.payload.total > 1000", rs[0].Where)
	require.Empty(t, rs[3].Where)

	// An event every route's filter skipped is dispatched with no job,
	// and the record says why.
	want[refunds[0]] = []string{"audit"}
	require.Equal(t, history.OutcomeDispatched, got[refunds[1]].Outcome)
	require.Equal(t, "no job: the filter of every route skipped the event", got[refunds[1]].Reason)
	require.Equal(t, map[string]string{"audit": no}, skips(tb.routeSet(t, refunds[1])))
	tb.requireExactlyOnce(t, want)

	// The metrics count the jobs skipped, by handler and reason.
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	skippedBy := map[string]float64{}
	for _, c := range cases {
		for kind, why := range c.want {
			if why != match {
				skippedBy[kind+"/"+why]++
			}
		}
	}
	skippedBy["audit/"+no]++
	for key, n := range skippedBy {
		kind, why, _ := strings.Cut(key, "/")
		v, ok := metricValue(t, reg, "notified_jobs_skipped_by_filter_total", map[string]string{"handler": kind, "reason": why})
		require.True(t, ok, key)
		require.Equal(t, n, v, key)
	}

	// Exactly once: a route changed after the dispatch does not dispatch
	// an event again, even announced again.
	tb.addRoute(t, "refund", "audit", "$.payload.amount > 1")
	tb.addRoute(t, "order_placed", "big", "")
	tb.Outbox(t, refunds[1], ids[1])
	testdb.WaitFor(t, 20*time.Second, func() (bool, string) {
		n := testdb.Count(t, tb.DB.Pool, "SELECT count(*) FROM "+tb.DB.Schema+".notified_outbox")
		return n == 0, "outbox drained"
	})
	tb.requireExactlyOnce(t, want)
	require.Equal(t, map[string]string{"audit": no}, skips(tb.routeSet(t, refunds[1])), "the record stands")
}

// TestFiltersOnLargeRows: the filters of a row over LargeRowBytes, whose
// jobs the server inserts, are evaluated in the server too.
func TestFiltersOnLargeRows(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.addRoute(t, "order_placed", "big", "$.payload.total > 1000")
	tb.addRoute(t, "order_placed", "ship", "")
	tb.addRoute(t, "order_placed", "fr", `strict $.payload.country == "FR"`)
	pad := strings.Repeat("y", 40<<10)
	ids := tb.insertPayloads(t, "order_placed",
		js(`{"total": 5000, "country": "FR", "pad": "`+pad+`"}`),
		js(`{"total": 5, "pad": "`+pad+`"}`),
		js(`{"total": 5000}`),
		js(`{"total": "x", "pad": "`+pad+`"}`))
	cfg := tb.Config
	cfg.LargeRowBytes, cfg.MaxBatchBytes = 16<<10, 1<<20
	_, sigs := tb.startWatched(t, cfg)
	tb.WaitRecorded(t, len(ids))
	waitAccounted(t, sigs, len(ids))
	tb.requireExactlyOnce(t, map[string][]string{
		ids[0]: {"big", "fr", "ship"},
		ids[1]: {"ship"},
		ids[2]: {"big", "ship"},
		ids[3]: {"ship"},
	})
	require.Equal(t, map[string]string{"big": history.SkippedByFilterError, "fr": history.SkippedByFilterError, "ship": ""},
		skips(tb.routeSet(t, ids[3])))
	// The large rows' jobs hold the row as it is.
	var differ int
	require.NoError(t, tb.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+tb.DB.Schema+`.river_job j
		JOIN `+tb.Config.Table+` e ON e.id::text = j.args->>'event_id' WHERE j.args->'data' <> to_jsonb(e)`).Scan(&differ))
	require.Zero(t, differ)
}

// TestFiltersWithPoisonRows: a filter on rows River cannot take does not
// change how they are isolated: each is rejected, and its neighbours are
// dispatched to the handlers their rows' filters choose.
func TestFiltersWithPoisonRows(t *testing.T) {
	t.Parallel()
	tb := poisonTable(t)
	tb.addRoute(t, "ok", "even", "$.data.i % 2 == 0")
	tb.addRoute(t, "ok", "strict", "strict $.data.missing.key > 0")
	goodIDs, bad := insertPoisoned(t, tb, 80)
	_, sigs := tb.startWatched(t, tb.Config)
	total := len(goodIDs) + len(bad)
	tb.WaitRecorded(t, total)
	waitAccounted(t, sigs, total)

	got := tb.Outcomes(t)
	rows, err := tb.DB.Pool.Query(context.Background(), "SELECT id::text, (data->>'i')::int FROM "+tb.Config.Table+" WHERE id::text = ANY($1)", goodIDs)
	require.NoError(t, err)
	byID := map[string]int{}
	var id string
	var i int
	_, err = pgx.ForEachRow(rows, []any{&id, &i}, func() error { byID[id] = i; return nil })
	require.NoError(t, err)
	want := map[string][]string{}
	for _, id := range goodIDs {
		require.Equal(t, history.OutcomeDispatched, got[id].Outcome, "good event %s", id)
		want[id] = []string{"k", "k2"}
		if byID[id]%2 == 0 {
			want[id] = append(want[id], "even")
		}
		require.Equal(t, history.SkippedByFilterError, skips(tb.routeSet(t, id))["strict"])
	}
	for id := range bad {
		require.Equal(t, history.OutcomeRejected, got[id].Outcome, "bad event %s", id)
	}
	tb.requireExactlyOnce(t, want)
}
