package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/routes"
)

// TestEventPageShowsFilterSkips: the event page says, per handler, that the
// route's filter skipped the event, with the filter as the tooltip.
func TestEventPageShowsFilterSkips(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	store := routes.NewStore(tb.db.Pool, tb.db.Schema)
	require.NoError(t, store.Add(context.Background(), routes.Route{Event: "order_placed", Kind: "big_order_alert", Where: "$.payload.total > 1000"}))
	require.NoError(t, store.Add(context.Background(), routes.Route{Event: "order_placed", Kind: "french_desk", Where: "strict $.payload.country == \"FR\""}))
	tb.route(t, "order_placed", "ship_order")
	tb.startBridge(t)
	tb.insertEvent(t, 42, "order_placed") // total 12.5, no country
	tb.waitDispatched(t, "42")
	ts := serve(t, tb.newServer(t, "", ""))

	r := get(t, ts, "/events/42", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<span class="name">big_order_alert</span> <span class="muted skipped" title="filter: $.payload.total &gt; 1000">(skipped by filter)</span>`)
	require.Contains(t, r.body, `<span class="name">french_desk</span> <span class="muted skipped" title="filter: strict $.payload.country == &#34;FR&#34;">(skipped: filter error)</span>`)
	require.Contains(t, r.body, `<span class="name">ship_order</span></dd>`)
	require.Contains(t, r.body, `<td><span class="name">ship_order</span></td>`)
	require.NotContains(t, r.body, `<td><span class="name">big_order_alert</span></td>`)

	// The list of events says so too.
	r = get(t, ts, "/events", "", "")
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Contains(t, r.body, `<span class="name">big_order_alert</span> <span class="muted skipped">(skipped by filter)</span>, <span class="name">french_desk</span> <span class="muted skipped">(skipped: filter error)</span>, <span class="name">ship_order</span></td>`)
}
