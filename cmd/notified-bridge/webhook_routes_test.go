package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

// TestRoutesWebhook: routes add --webhook stores a webhook route (kind
// notified_webhook, queue webhook), several URLs of one event are separate
// routes, and routes remove --webhook removes one; bad URLs and secret
// names are one-line errors.
func TestRoutesWebhook(t *testing.T) {
	t.Parallel()
	db := testdb.New(t, testdb.Options{NoEventsTable: true})

	out := mustRun(t, db, "routes", "add", "--webhook", "https://app.internal/hooks/welcome", "--secret-env", "NOTIFIED_WEBHOOK_SECRET_WELCOME", "user_signed_up")
	require.Equal(t, "route added: user_signed_up -> webhook https://app.internal/hooks/welcome (queue webhook, priority 1, max attempts 25, signed with $NOTIFIED_WEBHOOK_SECRET_WELCOME)\n"+
		"its jobs are delivered by `notified-bridge work` (queue webhook)\n", out)
	out = mustRun(t, db, "routes", "add", "--webhook", "http://crm.internal/signup", "user_signed_up")
	require.Contains(t, out, "warning: requests are not signed")
	mustRun(t, db, "routes", "add", "user_signed_up", "send_welcome_email")

	var rs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, db, "routes", "list", "--json")), &rs))
	require.Len(t, rs, 3)
	require.Equal(t, "notified_webhook", rs[0]["kind"])
	require.Equal(t, "http://crm.internal/signup", rs[0]["webhook"])
	require.Equal(t, "webhook", rs[0]["queue"])
	require.Equal(t, "https://app.internal/hooks/welcome", rs[1]["webhook"])
	require.Equal(t, "NOTIFIED_WEBHOOK_SECRET_WELCOME", rs[1]["secret_env"])
	require.Equal(t, "send_welcome_email", rs[2]["kind"])
	table := mustRun(t, db, "routes", "list")
	require.Contains(t, table, "webhook https://app.internal/hooks/welcome")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook", "ftp://x/y", "e"}, "scheme"},
		{[]string{"--webhook", "https://user:hunter2@x/y", "e"}, "credentials"},
		{[]string{"--webhook", " ", "e"}, "--webhook is empty"},
		{[]string{"--webhook", "https://x/y", "--secret-env", "DATABASE_URL", "e"}, `secret variable "DATABASE_URL" must be named NOTIFIED_WEBHOOK_SECRET`},
		{[]string{"--secret-env", "NOTIFIED_WEBHOOK_SECRET_X", "e", "k"}, "--secret-env applies to webhook routes"},
		{[]string{"e", "notified_webhook"}, "the kind notified_webhook is for webhook routes"},
		{[]string{"--webhook", "https://x/y", "e", "k"}, `unexpected argument "k"`},
	} {
		stdout, stderr, code := run(t, db, append([]string{"routes", "add"}, tc.args...)...)
		requireUserError(t, stderr, code, tc.want)
		require.NotContains(t, stderr, "hunter2", "a password in a URL is never echoed")
		require.Empty(t, stdout)
	}

	mustRun(t, db, "routes", "remove", "--webhook", "http://crm.internal/signup", "user_signed_up")
	_, stderr, code := run(t, db, "routes", "remove", "--webhook", "http://crm.internal/signup", "user_signed_up")
	requireUserError(t, stderr, code, "no route user_signed_up -> webhook http://crm.internal/signup")
	require.Len(t, strings.Split(strings.TrimRight(mustRun(t, db, "routes", "list"), "\n"), "\n"), 3, "the other two routes are left")
}
