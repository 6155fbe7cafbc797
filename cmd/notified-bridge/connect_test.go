package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDatabaseURLOfAnotherKindRefused: a database URL that is neither a
// postgres:// URL nor a key=value DSN is refused before connecting, on one
// line that shows the expected forms, never with the URL's password.
func TestDatabaseURLOfAnotherKindRefused(t *testing.T) {
	t.Parallel()
	const forms = "use postgres://user:password@host:5432/database (or postgresql://), or a key=value DSN such as host=localhost dbname=app"
	for _, c := range []struct{ url, want string }{
		{"mysql://x", "database URL has scheme mysql://, not postgres:// or postgresql://: " + forms},
		{"http://app:s3cret@db.example:5432/app", "database URL has scheme http://, not postgres:// or postgresql://: " + forms},
		{"POSTGRES://app:s3cret@127.0.0.1:1/app", "database URL's scheme POSTGRES:// must be lower case: " + forms},
		{"localhost:5432", "database URL is neither a postgres:// URL nor a key=value DSN: " + forms},
		{"app:s3cret@localhost/app", "database URL is neither a postgres:// URL nor a key=value DSN: " + forms},
		{"app:s3cret@db://x", "database URL is neither a postgres:// URL nor a key=value DSN: " + forms},
	} {
		for _, cmd := range [][]string{{"migrate"}, {"run"}, {"routes", "list"}, {"status"}, {"install-trigger"}} {
			stdout, stderr, code := runEnv(t, envWithURL(c.url), cmd...)
			requireUserError(t, stderr, code, c.want)
			require.NotContains(t, stderr, "s3cret", "the password leaked into the message")
			require.NotContains(t, stderr, "keyword/value", "pgx's own parse error is not shown")
			require.Empty(t, stdout)
		}
	}

	// The forms pgx reads are let through, to fail, here, on connecting.
	for _, url := range []string{"postgresql://postgres@127.0.0.1:1/test", "host=127.0.0.1 port=1 dbname=test"} {
		_, stderr, code := runEnv(t, envWithURL(url), "migrate")
		requireUserError(t, stderr, code, "connect to database test on 127.0.0.1:1")
	}
}

// TestDemoWithDatabaseURLOfAnotherKind: demo connects on its own (not
// through connect); its error for such a URL is one line, naming the URL
// once, without the password.
func TestDemoWithDatabaseURLOfAnotherKind(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runEnv(t, envWithURL("mysql://app:s3cret@x"), "demo")
	requireUserError(t, stderr, code)
	require.NotContains(t, stderr, "s3cret")
	require.Equal(t, 1, strings.Count(stderr, "mysql://"), "the URL is named once: %s", stderr)
	require.Empty(t, stdout)
}
