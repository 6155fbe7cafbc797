package web_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
	"github.com/notified/notified/routes"
)

// TestEventPageShowsWebhookTargets: a webhook route's job shows the URL it
// delivers to, escaped, on the event page, and the status page counts its
// jobs under that URL.
func TestEventPageShowsWebhookTargets(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	const url = `https://hooks.example/welcome?x="><script>alert(1)</script>`
	require.NoError(t, routes.NewStore(tb.db.Pool, tb.db.Schema).Add(context.Background(),
		routes.Route{Event: "user_signed_up", Webhook: url}))
	tb.startBridge(t)
	testdb.Exec(t, tb.db.Pool, `INSERT INTO `+tb.db.Events()+` (id, name) VALUES (1, 'user_signed_up')`)
	tb.waitDispatched(t, "1")

	r := get(t, serve(t, tb.newServer(t, "", "")), "/events/1", "", "")
	require.Equal(t, 200, r.code, r.body)
	escaped := `https://hooks.example/welcome?x=&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;`
	require.Contains(t, r.body, `<code class="webhook">`+escaped+`</code>`)
	require.Contains(t, r.body, `<div class="webhook muted">to <code>`+escaped+`</code></div>`)
	require.NotContains(t, r.body, "<script>")

	r = get(t, serve(t, tb.newServer(t, "", "")), "/status", "", "")
	require.Equal(t, 200, r.code, r.body)
	require.Contains(t, r.body, `<tr class="handler"><td><span class="name">notified_webhook</span><div class="webhook muted">to <code>`+escaped+`</code></div>`)
	require.NotContains(t, r.body, "<script>")
}
