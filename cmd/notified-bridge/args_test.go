package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/testdb"
)

func TestHoistGlobalFlags(t *testing.T) {
	t.Parallel()
	app := newApp()
	for _, c := range []struct{ in, want string }{
		{"nb migrate --schema app", "nb --schema app migrate"},
		{"nb migrate --schema=app --json", "nb --schema=app migrate --json"},
		{"nb --schema app migrate", "nb --schema app migrate"},
		{"nb --database-url postgres://x --schema app routes list --json --log-level debug",
			"nb --database-url postgres://x --schema app --log-level debug routes list --json"},
		{"nb routes add e k --queue q --schema s", "nb --schema s routes add e k --queue q"},
		{"nb notify -- --schema", "nb notify -- \x00end-of-flags --schema"},
		{"nb migrate --schema", "nb migrate --schema"}, // no value: left for urfave/cli to refuse
		{"nb --help", "nb --help"},
		{"nb", "nb"},
	} {
		got := strings.Join(hoistGlobalFlags(app, strings.Fields(c.in)), " ")
		require.Equal(t, c.want, got, c.in)
	}
}

func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	// The form the "not migrated" message suggests works as written.
	out, stderr, code := runEnv(t, envWithURL(db.URL), "routes", "list", "--schema", db.Schema, "--json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", out)
}
