package bridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/migrations"
)

// lookupIn is a lookup function over env.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestConfigFromLookupUnsetIsDefault(t *testing.T) {
	t.Parallel()
	cfg, err := bridge.ConfigFromLookup(lookupIn(nil))
	require.NoError(t, err)
	require.Equal(t, bridge.Config{}, cfg, "unset variables leave their fields zero")

	// Empty, outside the names, is unset too, as for the command's
	// numbers and switches.
	empty := map[string]string{}
	for _, name := range bridge.EnvVars() {
		empty[name] = ""
	}
	for _, name := range []string{"NOTIFIED_EVENTS_TABLE_NAME", "NOTIFIED_ID_FIELD_NAME", "NOTIFIED_NAME_FIELD_NAME", "NOTIFIED_CHANNEL"} {
		delete(empty, name)
	}
	cfg, err = bridge.ConfigFromLookup(lookupIn(empty))
	require.NoError(t, err)
	require.Equal(t, bridge.Config{}, cfg)
}

func TestConfigFromLookupReadsEveryVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"NOTIFIED_SCHEMA":                 "notified",
		"NOTIFIED_EVENTS_TABLE_NAME":      "app.my_events",
		"NOTIFIED_ID_FIELD_NAME":          "pk",
		"NOTIFIED_NAME_FIELD_NAME":        "kind",
		"NOTIFIED_CHANNEL":                "events_channel",
		"NOTIFIED_CHANNEL_SELECT_TIMEOUT": "10",
		"NOTIFIED_POLL_ONLY":              "true",
		"NOTIFIED_BATCH_SIZE":             "500",
		"NOTIFIED_CONCURRENCY":            " 4 ",
		"NOTIFIED_MISSING_GRACE":          "1m",
		"NOTIFIED_BATCH_TIMEOUT":          "10s",
		"NOTIFIED_MAX_BATCH_BYTES":        "4194304",
		"NOTIFIED_LARGE_ROW_BYTES":        "65536",
		"NOTIFIED_NO_CAPTURE_TRIGGER":     "1",
		"NOTIFIED_RETENTION":              "168h",
	}
	var asked []string
	cfg, err := bridge.ConfigFromLookup(func(name string) (string, bool) {
		asked = append(asked, name)
		return lookupIn(env)(name)
	})
	require.NoError(t, err)
	require.Equal(t, bridge.Config{
		Schema: "notified", Table: "app.my_events", IDColumn: "pk", NameColumn: "kind", Channel: "events_channel",
		PollInterval: 10 * time.Second, PollOnly: true, BatchSize: 500, Concurrency: 4,
		MissingGrace: time.Minute, BatchTimeout: 10 * time.Second, MaxBatchBytes: 4 << 20, LargeRowBytes: 64 << 10,
		NoCaptureTrigger: true, Retention: 168 * time.Hour,
	}, cfg)
	require.ElementsMatch(t, bridge.EnvVars(), asked, "EnvVars names exactly the variables read")
	for name := range env {
		require.Contains(t, bridge.EnvVars(), name)
	}
}

func TestConfigFromLookupValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, value string
		check       func(bridge.Config) bool
	}{
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "0.5", func(c bridge.Config) bool { return c.PollInterval == 500*time.Millisecond }},
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "500ms", func(c bridge.Config) bool { return c.PollInterval == 500*time.Millisecond }},
		{"NOTIFIED_RETENTION", "forever", func(c bridge.Config) bool { return c.Retention == bridge.KeepForever }},
		{"NOTIFIED_RETENTION", "0", func(c bridge.Config) bool { return c.Retention == bridge.KeepForever }},
		{"NOTIFIED_POLL_ONLY", "false", func(c bridge.Config) bool { return !c.PollOnly }},
		// 0 is the command's too: the default.
		{"NOTIFIED_BATCH_TIMEOUT", "0s", func(c bridge.Config) bool { return c.BatchTimeout == 0 }},
		{"NOTIFIED_MAX_BATCH_BYTES", "0", func(c bridge.Config) bool { return c.MaxBatchBytes == 0 }},
		// LargeRowBytes' default follows a MaxBatchBytes below it.
		{"NOTIFIED_MAX_BATCH_BYTES", "524288", func(c bridge.Config) bool { return c.WithDefaults().LargeRowBytes == 512<<10 }},
		// Names are used as written.
		{"NOTIFIED_CHANNEL", "Events ", func(c bridge.Config) bool { return c.Channel == "Events " }},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := bridge.ConfigFromLookup(lookupIn(map[string]string{tc.name: tc.value}))
			require.NoError(t, err)
			require.True(t, tc.check(cfg), "%+v", cfg)
		})
	}
}

func TestConfigFromLookupErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, value, want string
	}{
		// Values that do not parse.
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "soon",
			`NOTIFIED_CHANNEL_SELECT_TIMEOUT: interval "soon" is not a number of seconds or a duration such as 500ms or 5s`},
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "0",
			`NOTIFIED_CHANNEL_SELECT_TIMEOUT: interval "0" is not positive: use a number of seconds such as 5, or a duration such as 500ms`},
		{"NOTIFIED_POLL_ONLY", "maybe", `NOTIFIED_POLL_ONLY "maybe" is not a boolean: give true or false`},
		{"NOTIFIED_NO_CAPTURE_TRIGGER", "yes", `NOTIFIED_NO_CAPTURE_TRIGGER "yes" is not a boolean: give true or false`},
		{"NOTIFIED_BATCH_SIZE", "1k", `NOTIFIED_BATCH_SIZE "1k" is not a whole number: give one such as 1000, or leave it unset for the default`},
		{"NOTIFIED_CONCURRENCY", "two", `NOTIFIED_CONCURRENCY "two" is not a whole number: give one such as 2, or leave it unset for the default`},
		{"NOTIFIED_MISSING_GRACE", "30", `NOTIFIED_MISSING_GRACE "30" is not a duration: give one such as 30s, or leave it unset for the default`},
		{"NOTIFIED_BATCH_TIMEOUT", "1 minute", `NOTIFIED_BATCH_TIMEOUT "1 minute" is not a duration: give one such as 30s, or leave it unset for the default`},
		{"NOTIFIED_MAX_BATCH_BYTES", "8MB",
			`NOTIFIED_MAX_BATCH_BYTES "8MB" is not a number of bytes: give one such as 8388608, or leave it unset for the default`},
		{"NOTIFIED_LARGE_ROW_BYTES", "1e6",
			`NOTIFIED_LARGE_ROW_BYTES "1e6" is not a number of bytes: give one such as 1048576, or leave it unset for the default`},
		{"NOTIFIED_RETENTION", "30d", `NOTIFIED_RETENTION "30d" is not a duration: give one such as 720h (30 days), or forever`},
		{"NOTIFIED_RETENTION", "-1h", `NOTIFIED_RETENTION "-1h" is negative: give a duration such as 720h (30 days), or forever`},
		// Values quoted safely: escapes visible, long ones cut.
		{"NOTIFIED_BATCH_SIZE", "\x1b[2J", `NOTIFIED_BATCH_SIZE "\x1b[2J" is not a whole number: give one such as 1000, or leave it unset for the default`},
		{"NOTIFIED_POLL_ONLY", string(make([]byte, 100)),
			`NOTIFIED_POLL_ONLY "` + strings.Repeat(`\x00`, 64) + `"... (100 bytes) is not a boolean: give true or false`},
		// Empty names and zeros that would silently be the default.
		{"NOTIFIED_CHANNEL", "", "NOTIFIED_CHANNEL is empty: give a value, or leave it unset for the default"},
		{"NOTIFIED_EVENTS_TABLE_NAME", " ", "NOTIFIED_EVENTS_TABLE_NAME is empty: give a value, or leave it unset for the default"},
		{"NOTIFIED_ID_FIELD_NAME", "", "NOTIFIED_ID_FIELD_NAME is empty: give a value, or leave it unset for the default"},
		{"NOTIFIED_NAME_FIELD_NAME", "", "NOTIFIED_NAME_FIELD_NAME is empty: give a value, or leave it unset for the default"},
		{"NOTIFIED_BATCH_SIZE", "0", "NOTIFIED_BATCH_SIZE is 0: give a positive value, or leave it unset for the default (1000)"},
		{"NOTIFIED_CONCURRENCY", "0", "NOTIFIED_CONCURRENCY is 0: give a positive value, or leave it unset for the default (2)"},
		{"NOTIFIED_MISSING_GRACE", "0s", "NOTIFIED_MISSING_GRACE is 0s: give a positive value, or leave it unset for the default (30s)"},
		// Values that parse but Validate refuses, naming the variable.
		{"NOTIFIED_BATCH_SIZE", "20000", "NOTIFIED_BATCH_SIZE 20000 is out of range: use 1 to 10000"},
		{"NOTIFIED_CONCURRENCY", "-1", "NOTIFIED_CONCURRENCY -1 is out of range: use 1 to 64"},
		{"NOTIFIED_MISSING_GRACE", "-1s", "NOTIFIED_MISSING_GRACE -1s is negative: use a duration such as 30s"},
		{"NOTIFIED_BATCH_TIMEOUT", "10ms", "NOTIFIED_BATCH_TIMEOUT 10ms is too short: use at least 100ms"},
		{"NOTIFIED_MAX_BATCH_BYTES", "100", "NOTIFIED_MAX_BATCH_BYTES 100 is too small: use at least 1024"},
		{"NOTIFIED_LARGE_ROW_BYTES", "-1", "NOTIFIED_LARGE_ROW_BYTES -1 is out of range: use 1 to NOTIFIED_MAX_BATCH_BYTES (8388608)"},
		{"NOTIFIED_EVENTS_TABLE_NAME", "a.b.c", `events table name "a.b.c" has more than one dot: use table or schema.table`},
		{"NOTIFIED_CHANNEL", "\x00", `channel "\x00" contains a NUL byte`},
		// A field's name inside a quoted value is the user's, left as it is.
		{"NOTIFIED_SCHEMA", "Table Schema",
			`NOTIFIED_SCHEMA "Table Schema" is not valid: use letters, digits and underscores, at most 46 characters, not starting with a digit`},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := bridge.ConfigFromLookup(lookupIn(map[string]string{tc.name: tc.value}))
			require.EqualError(t, err, tc.want)
			require.Equal(t, bridge.Config{}, cfg)
		})
	}
}

func TestConfigFromLookupKeepsSentinels(t *testing.T) {
	t.Parallel()
	_, err := bridge.ConfigFromLookup(lookupIn(map[string]string{"NOTIFIED_SCHEMA": "pg_catalog"}))
	require.ErrorIs(t, err, migrations.ErrSystemSchema)
	require.ErrorContains(t, err, `NOTIFIED_SCHEMA "pg_catalog" is a system schema`)
}

func TestConfigFromLookupNil(t *testing.T) {
	t.Parallel()
	_, err := bridge.ConfigFromLookup(nil)
	require.EqualError(t, err, "ConfigFromLookup: lookup is nil")
}

func TestParseRetention(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"720h": 720 * time.Hour, " 1h30m ": 90 * time.Minute, "forever": bridge.KeepForever,
		"Forever": bridge.KeepForever, "0": bridge.KeepForever, "0s": bridge.KeepForever,
	} {
		got, err := bridge.ParseRetention(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := bridge.ParseRetention("")
	require.EqualError(t, err, `Retention "" is not a duration: give one such as 720h (30 days), or forever`)
}

// ConfigFromEnv reads the process's environment: not parallel.
func TestConfigFromEnv(t *testing.T) {
	for _, name := range bridge.EnvVars() {
		t.Setenv(name, "") // restored when the test ends
	}
	t.Setenv("NOTIFIED_EVENTS_TABLE_NAME", "my_events")
	t.Setenv("NOTIFIED_ID_FIELD_NAME", "pk")
	t.Setenv("NOTIFIED_NAME_FIELD_NAME", "name")
	t.Setenv("NOTIFIED_CHANNEL", "events_channel")
	t.Setenv("NOTIFIED_CHANNEL_SELECT_TIMEOUT", "10")
	cfg, err := bridge.ConfigFromEnv()
	require.NoError(t, err)
	require.Equal(t, bridge.Config{Table: "my_events", IDColumn: "pk", NameColumn: "name", Channel: "events_channel",
		PollInterval: 10 * time.Second}, cfg)

	t.Setenv("NOTIFIED_CHANNEL_SELECT_TIMEOUT", "-5")
	_, err = bridge.ConfigFromEnv()
	require.ErrorContains(t, err, `NOTIFIED_CHANNEL_SELECT_TIMEOUT: interval "-5" is not positive`)
}
