package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/termsafe"
)

// The tests below read the process's environment, as urfave/cli does: they
// are not parallel, and clearEnv restores it when they end.

// clearEnv unsets every variable a flag of the app reads, for the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for name := range envVarFlags(newApp()) {
		t.Setenv(name, "") // registers the restore
		require.NoError(t, os.Unsetenv(name))
	}
}

// runEnvConfig is the bridge.Config `notified-bridge run` builds with env
// as its only settings, checked as run checks it before connecting, or the
// error the command would print (without "notified-bridge: ").
func runEnvConfig(t *testing.T, env map[string]string) (bridge.Config, error) {
	t.Helper()
	for name, value := range env {
		require.NoError(t, os.Setenv(name, value))
	}
	defer func() {
		for name := range env {
			require.NoError(t, os.Unsetenv(name))
		}
	}()
	logger := slog.Default() // the command's Before sets it
	defer slog.SetDefault(logger)

	var cfg bridge.Config
	cmd := runCommand()
	prepare(cmd)
	cmd.Action = func(c *cli.Context) error {
		var err error
		cfg, err = runConfig(c)
		return err
	}
	app := &cli.App{Name: "notified-bridge", Flags: globalFlags(), Commands: []*cli.Command{cmd},
		Writer: io.Discard, ErrWriter: io.Discard, ExitErrHandler: func(*cli.Context, error) {}}
	if err := app.Run([]string{"notified-bridge", "run"}); err != nil {
		return bridge.Config{}, fmt.Errorf("%s", flagNames(termsafe.OneLine(err.Error()), commandFields(err)))
	}
	return comparable(cfg), nil
}

// libEnvConfig is what bridge.ConfigFromLookup makes of env.
func libEnvConfig(env map[string]string) (bridge.Config, error) {
	cfg, err := bridge.ConfigFromLookup(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	return comparable(cfg), err
}

// comparable is cfg with its defaults, without what neither reads from
// the environment.
func comparable(cfg bridge.Config) bridge.Config {
	cfg = cfg.WithDefaults()
	cfg.Version, cfg.Logger = "", nil
	return cfg
}

// sampleValue is a value for f other than its default that the command
// accepts, as a user might write it.
func sampleValue(t *testing.T, f cli.Flag) []string {
	t.Helper()
	switch f := f.(type) {
	case *cli.StringFlag:
		if _, err := strconv.ParseFloat(f.Value, 64); err == nil {
			return []string{"7"}
		}
		if _, err := time.ParseDuration(f.Value); err == nil {
			return []string{"48h"}
		}
		// A name, or one of the log settings' words.
		return []string{"sample_x", "debug", "json"}
	case *cli.BoolFlag:
		return []string{strconv.FormatBool(!f.Value)}
	case *cli.IntFlag:
		return []string{strconv.Itoa(f.Value + 1)}
	case *cli.Int64Flag:
		return []string{strconv.FormatInt(f.Value+1, 10)}
	case *cli.DurationFlag:
		return []string{(f.Value + time.Second).String()}
	case *cli.StringSliceFlag:
		return []string{"sample_x"}
	}
	t.Fatalf("flag --%s is a %T: give sampleValue a value for it", f.Names()[0], f)
	return nil
}

// TestConfigFromEnvReadsWhatRunReads walks the flags of `run`, its own and
// the global ones: every variable that changes the bridge.Config run builds
// is one bridge.ConfigFromLookup reads, to the same effect, with the same
// default; every other variable is not. So a flag added to run for a
// bridge.Config field, or a default changed on one side, fails here until
// the library reads it too.
func TestConfigFromEnvReadsWhatRunReads(t *testing.T) {
	clearEnv(t)

	base, err := runEnvConfig(t, nil)
	require.NoError(t, err)
	lib, err := libEnvConfig(nil)
	require.NoError(t, err)
	require.Equal(t, base, lib, "the defaults differ")

	var read []string
	for _, f := range append(globalFlags(), runCommand().Flags...) {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		for _, name := range d.GetEnvVars() {
			var cliCfg bridge.Config
			var sample string
			for _, v := range sampleValue(t, f) {
				if cliCfg, err = runEnvConfig(t, map[string]string{name: v}); err == nil {
					sample = v
					break
				}
			}
			require.NoError(t, err, "no sample value of %s that run accepts", name)
			if cliCfg == base {
				require.NotContains(t, bridge.EnvVars(), name, "run does not read %s=%s into the bridge's configuration", name, sample)
				continue
			}
			require.Contains(t, bridge.EnvVars(), name, "run reads %s=%s into the bridge's configuration: ConfigFromLookup must read it", name, sample)
			libCfg, err := libEnvConfig(map[string]string{name: sample})
			require.NoError(t, err, "%s=%s", name, sample)
			require.Equal(t, cliCfg, libCfg, "%s=%s", name, sample)
			read = append(read, name)
		}
	}
	require.ElementsMatch(t, bridge.EnvVars(), read, "ConfigFromLookup reads a variable run does not")
}

// TestRunAcceptsASmallMaxBatchBytesAlone: the default of --large-row-bytes
// (1 MiB) gives way to a smaller --max-batch-bytes, in run as in the
// library, instead of failing validation.
func TestRunAcceptsASmallMaxBatchBytesAlone(t *testing.T) {
	clearEnv(t)
	env := map[string]string{"NOTIFIED_MAX_BATCH_BYTES": "524288"}
	cliCfg, err := runEnvConfig(t, env)
	require.NoError(t, err)
	libCfg, err := libEnvConfig(env)
	require.NoError(t, err)
	require.Equal(t, cliCfg, libCfg)
	require.Equal(t, int64(524288), cliCfg.WithDefaults().LargeRowBytes)
}

// flagPrefix is how the command names a flag before its variable in a
// message: "--batch-size / " or "--channel or ".
var flagPrefix = regexp.MustCompile(`--[a-z-]+ (/|or) `)

// TestConfigFromEnvRefusesWhatRunRefuses: a value run refuses is refused by
// ConfigFromLookup, naming the variable; where run's message is its own,
// not urfave/cli's, the two say the same, but for the flag.
func TestConfigFromEnvRefusesWhatRunRefuses(t *testing.T) {
	clearEnv(t)
	cases := []struct {
		name, value string
		sameText    bool // false: urfave/cli's message for a value it cannot parse
	}{
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "soon", true},
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "0", true},
		{"NOTIFIED_CHANNEL_SELECT_TIMEOUT", "-1", true},
		{"NOTIFIED_RETENTION", "30d", true},
		{"NOTIFIED_RETENTION", "-1h", true},
		{"NOTIFIED_BATCH_SIZE", "0", true},
		{"NOTIFIED_BATCH_SIZE", "-1", true},
		{"NOTIFIED_BATCH_SIZE", "20000", true},
		{"NOTIFIED_BATCH_SIZE", "1k", false},
		{"NOTIFIED_CONCURRENCY", "0", true},
		{"NOTIFIED_CONCURRENCY", "65", true},
		{"NOTIFIED_MISSING_GRACE", "0s", true},
		{"NOTIFIED_MISSING_GRACE", "-1s", true},
		{"NOTIFIED_MISSING_GRACE", "30", false},
		{"NOTIFIED_BATCH_TIMEOUT", "10ms", true},
		{"NOTIFIED_BATCH_TIMEOUT", "soon", false},
		{"NOTIFIED_MAX_BATCH_BYTES", "100", true},
		{"NOTIFIED_MAX_BATCH_BYTES", "8MB", false},
		{"NOTIFIED_LARGE_ROW_BYTES", "-1", true},
		{"NOTIFIED_LARGE_ROW_BYTES", "9999999", true}, // past NOTIFIED_MAX_BATCH_BYTES
		{"NOTIFIED_POLL_ONLY", "maybe", false},
		{"NOTIFIED_NO_CAPTURE_TRIGGER", "yes", false},
		{"NOTIFIED_SCHEMA", "pg_catalog", true},
		{"NOTIFIED_SCHEMA", "Bad Schema", true},
		{"NOTIFIED_EVENTS_TABLE_NAME", "", true},
		{"NOTIFIED_EVENTS_TABLE_NAME", "a.b.c", true},
		{"NOTIFIED_EVENTS_TABLE_NAME", "pg_catalog.events", true},
		{"NOTIFIED_ID_FIELD_NAME", " ", true},
		{"NOTIFIED_NAME_FIELD_NAME", "", true},
		{"NOTIFIED_CHANNEL", "", true},
		{"NOTIFIED_CHANNEL", strings.Repeat("c", 64), true},
	}
	for _, tc := range cases {
		env := map[string]string{tc.name: tc.value}
		_, cliErr := runEnvConfig(t, env)
		require.Error(t, cliErr, "run accepts %s=%q", tc.name, tc.value)
		_, libErr := libEnvConfig(env)
		require.Error(t, libErr, "ConfigFromLookup accepts %s=%q", tc.name, tc.value)
		if tc.sameText {
			require.Equal(t, flagPrefix.ReplaceAllString(cliErr.Error(), ""), libErr.Error(), "%s=%q", tc.name, tc.value)
		} else {
			require.Contains(t, libErr.Error(), tc.name)
			require.Contains(t, libErr.Error(), strconv.Quote(tc.value))
		}
	}
}

// TestParseRetentionIsRuns: the library's parser of NOTIFIED_RETENTION and
// run's agree, value for value and message for message.
func TestParseRetentionIsRuns(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"720h", " 1h30m ", "forever", "Forever", "0", "0s", "", "30d", "-1h", "for ever", "\x1b[2J"} {
		want, wantErr := parseRetention(in)
		got, err := bridge.ParseRetention(in)
		require.Equal(t, want, got, "%q", in)
		if wantErr == nil {
			require.NoError(t, err, "%q", in)
			continue
		}
		require.Error(t, err, "%q", in)
		require.Equal(t, wantErr.Error(), flagNames(err.Error(), nil), "%q", in)
	}
}
