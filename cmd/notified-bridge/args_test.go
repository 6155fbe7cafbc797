package main

import (
	"io"

	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/testdb"
)

func TestGlobalFlagsAfterTheCommand(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	// The form the "not migrated" message suggests works as written.
	out, stderr, code := runEnv(t, envWithURL(db.URL), "routes", "list", "--schema", db.Schema, "--json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", out)
}

// globalsSeen runs the app on args with the routes list command replaced,
// and returns the global flags that command reads.
func globalsSeen(t *testing.T, args ...string) map[string]string {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	seen := map[string]string{}
	for _, c := range app.Commands {
		if c.Name == "routes" {
			for _, sub := range c.Subcommands {
				if sub.Name == "list" {
					sub.Action = func(c *cli.Context) error {
						for _, f := range globalFlags() {
							seen[f.Names()[0]] = c.String(f.Names()[0])
						}
						return nil
					}
				}
			}
		}
	}
	require.NoError(t, app.Run(append([]string{"notified-bridge"}, args...)))
	return seen
}

func TestGlobalFlagsBeforeOrAfterTheCommand(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args          []string
		schema, level string
	}{
		{[]string{"routes", "list"}, "", "info"},
		{[]string{"--schema", "a", "routes", "list"}, "a", "info"},
		{[]string{"routes", "--schema", "a", "list"}, "a", "info"},
		{[]string{"routes", "list", "--schema", "a", "--log-level", "warn"}, "a", "warn"},
		{[]string{"--schema", "a", "--log-level", "debug", "routes", "list", "--schema", "b"}, "b", "debug"},
		{[]string{"--schema=a", "routes", "--schema=b", "list"}, "b", "info"},
	} {
		seen := globalsSeen(t, c.args...)
		require.Equal(t, c.schema, seen["schema"], c.args)
		require.Equal(t, c.level, seen["log-level"], c.args)
	}
}

func TestGlobalFlagsFromTheEnvironment(t *testing.T) {
	t.Setenv("NOTIFIED_SCHEMA", "e")
	t.Setenv("NOTIFIED_LOG_LEVEL", "warn")
	require.Equal(t, "e", globalsSeen(t, "routes", "list")["schema"])
	require.Equal(t, "warn", globalsSeen(t, "routes", "list")["log-level"])
	// The command line wins, wherever it is written.
	require.Equal(t, "a", globalsSeen(t, "--schema", "a", "routes", "list")["schema"])
	require.Equal(t, "a", globalsSeen(t, "routes", "list", "--schema", "a")["schema"])
}
