package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/testdb"
)

// TestParseRetention: a positive duration is kept as it is; forever, and 0
// for compatibility, are bridge.KeepForever, never bridge.Config's "the
// default".
func TestParseRetention(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"48h":                                   48 * time.Hour,
		"1h30m":                                 90 * time.Minute,
		"forever":                               bridge.KeepForever,
		" Forever ":                             bridge.KeepForever,
		"0":                                     bridge.KeepForever,
		"0s":                                    bridge.KeepForever,
		flagRetention().(*cli.StringFlag).Value: bridge.DefaultRetention,
	} {
		got, err := parseRetention(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

// TestRetentionRefusesBadValues: a value that is neither a positive duration
// nor forever is refused by every command that takes --retention, from the
// command line or the environment, with one message saying what to give.
func TestRetentionRefusesBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"run, not a duration", nil, []string{"run", "--retention", "soon"},
			`--retention / NOTIFIED_RETENTION "soon" is not a duration: give one such as 720h (30 days), or forever`},
		{"prune, negative", nil, []string{"prune", "--retention", "-5h"},
			`--retention / NOTIFIED_RETENTION "-5h" is negative: give a duration such as 720h (30 days), or forever`},
		{"prune, from the environment", []string{"NOTIFIED_RETENTION=for ever"}, []string{"prune"},
			`--retention / NOTIFIED_RETENTION "for ever" is not a duration: give one such as 720h (30 days), or forever`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runEnv(t, append(baseEnv(), tc.env...), tc.args...)
			requireUserError(t, stderr, code)
			require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr)
			require.Empty(t, stdout)
		})
	}
}

// TestRetentionForeverReachesTheBridge: run gives the bridge forever for
// --retention forever, NOTIFIED_RETENTION=forever and the older 0, and the
// default otherwise.
func TestRetentionForeverReachesTheBridge(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	mustRun(t, db, "install-trigger", "--table", db.Events(), "--channel", db.Channel)
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--retention", "forever"}, "forever"},
		{[]string{"NOTIFIED_RETENTION=forever"}, nil, "forever"},
		{nil, []string{"--retention", "0"}, "forever"},
		{nil, nil, bridge.DefaultRetention.String()},
	} {
		b := startBridgeEnv(t, db, append(envWithURL(db.URL), tc.env...), tc.args...)
		require.Equal(t, tc.want, logged(b, "bridge starting", "retention"), "env %q, args %q", tc.env, tc.args)
		require.Equal(t, exitTerminate, b.stop(t))
	}
}
