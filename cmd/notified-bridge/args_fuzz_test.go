package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// Command lines for the fuzz targets below are one string, split on spaces
// (so an argument never holds a space; none of the logic looks at spaces).
var commandLineSeeds = []string{
	"", "migrate", "migrate --schema app", "--schema app migrate", "migrate --schema=app --json",
	"--database-url postgres://x --schema app routes list --json --log-level debug",
	"routes add e k --queue q --schema s", "notify -- --schema", "notify -- -5", "notify 5 -- -5",
	"--help", "-h", "migrate --help", "--schema", "migrate --schema", "migrate --schema --schema",
	"migrate --schema -- x", "--schema migrate", "-schema app migrate", "migrate -schema=app",
	"migrate ---schema app", "- migrate --schema s", "migrate - --schema s", "-- migrate --schema s",
	"--unknown migrate --schema s", "migrate --unknown --schema s", "history 42 --json -- --json",
	"migrate --log-level= --schema=", "migrate  --schema  app", "dead-letters retry 12 13 --reason r --schema s",
	"--schema=a --schema b migrate --schema c", "migrate --database-url=postgres://u:p@h/db?x=--schema",
	"run --ui-allowed-host a.example,b.example:8443 --schema s --ui-allowed-host [::1]",
}

// globalFlags are the names of newApp's flags, every one taking a value.
func globalFlags() map[string]bool {
	out := map[string]bool{}
	for _, f := range newApp().Flags {
		for _, n := range f.Names() {
			out[n] = true
		}
	}
	return out
}

// flagTerminator returns the index of the "--" that ends the flags of args
// (not one given as a flag's value), or -1.
func flagTerminator(args []string, global map[string]bool, from int) int {
	for i := from; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return i
		}
		if strings.HasPrefix(a, "-") {
			if name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "="); global[name] && !hasValue {
				i++
			}
		}
	}
	return -1
}

// commandIndex returns the index of the command in args: the first argument
// that is neither a flag nor a global flag's value, before any "--"; or -1.
func commandIndex(args []string, global map[string]bool) int {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if !strings.HasPrefix(a, "-") {
			return i
		}
		if name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "="); global[name] && !hasValue {
			i++
		}
	}
	return -1
}

// parseGlobal parses args as urfave/cli parses the global flags (Go's flag
// package, every global flag a string) and returns the command it sees and
// the global flags' values.
func parseGlobal(args []string, global map[string]bool) (string, map[string]string, error) {
	fs := flag.NewFlagSet("nb", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := map[string]*string{}
	for name := range global {
		vals[name] = fs.String(name, "", "")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return "", nil, err
	}
	out := map[string]string{}
	fs.Visit(func(f *flag.Flag) { out[f.Name] = *vals[f.Name] })
	return fs.Arg(0), out, nil
}

func FuzzHoistGlobalFlags(f *testing.F) {
	for _, s := range commandLineSeeds {
		f.Add(s)
	}
	app := newApp()
	global := globalFlags()
	f.Fuzz(func(t *testing.T, line string) {
		in := append([]string{"notified-bridge"}, strings.Split(line, " ")...)
		if line == "" {
			in = in[:1]
		}
		keep := slices.Clone(in)
		out := hoistGlobalFlags(app, in)
		require.Equal(t, keep, in, "the input was changed")
		// The end-of-flags marker comes only right after a "--" (the
		// first after the command), and is otherwise no argument.
		for i, a := range out {
			if a == endOfFlags {
				require.True(t, i > 0 && out[i-1] == "--", "%q -> %q: marker not after --", in, out)
			}
		}
		out = slices.DeleteFunc(slices.Clone(out), func(a string) bool { return a == endOfFlags })

		// A permutation, the program name first.
		require.Equal(t, in[0], out[0])
		a, b := slices.Clone(in), slices.Clone(out)
		slices.Sort(a)
		slices.Sort(b)
		require.Equal(t, a, b, "%q -> %q is not a permutation", in, out)

		// "--" and what follows stay last, in order.
		if k := flagTerminator(in, global, 1); k >= 0 {
			require.Equal(t, in[k:], out[len(out)-(len(in)-k):], "%q -> %q", in, out)
		}

		// urfave/cli sees the same command, with the global flags the
		// user wrote before and after it, the later value winning.
		// (Not checked: "---schema", which no flag parser accepts, and a
		// lone "-" before the command, which urfave/cli takes for the
		// command: both fail either way.)
		c := commandIndex(in, global)
		if c < 0 {
			require.Equal(t, in, out, "no command")
			return
		}
		cmdIn, valsIn, err := parseGlobal(in, global)
		// A global flag left without a value at the end is not moved:
		// urfave/cli refuses it (not modelled here).
		last := in[len(in)-1]
		lastName, _, lastHasValue := strings.Cut(strings.TrimLeft(last, "-"), "=")
		trailingNoValue := len(in)-1 > c && strings.HasPrefix(last, "-") && global[lastName] && !lastHasValue &&
			!slices.Contains(in[c+1:len(in)-1], "--")
		if err != nil || cmdIn == "-" || trailingNoValue ||
			slices.ContainsFunc(in, func(a string) bool { return strings.HasPrefix(a, "---") }) {
			return
		}
		require.Equal(t, in[c], cmdIn)
		cmdOut, valsOut, err := parseGlobal(out, global)
		require.NoError(t, err, "%q -> %q", in, out)
		require.Equal(t, cmdIn, cmdOut, "%q -> %q", in, out)
		for i := c + 1; i < len(in); i++ {
			if in[i] == "--" {
				break
			}
			if !strings.HasPrefix(in[i], "-") || strings.HasPrefix(in[i], "---") {
				continue
			}
			name, v, hasValue := strings.Cut(strings.TrimLeft(in[i], "-"), "=")
			if !global[name] {
				continue
			}
			if !hasValue && i+1 < len(in) {
				i++
				v = in[i]
			}
			valsIn[name] = v
		}
		for name, v := range valsIn {
			if _, ok := valsOut[name]; ok || v != "" {
				require.Equal(t, v, valsOut[name], "--%s in %q -> %q", name, in, out)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"24h", "90m", "0", "0s", "-1h", "1.5h", " 24h ", "2562047h", "9999999h", "1h-1m",
		"2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123456789+02:00", "2026-11-27T10:00:00", "2026-11-27 10:00:00",
		"2026-11-27 10:00", "2026-11-27", "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31T23:59:59Z",
		"2026-11-27T10:00:00+25:00", "yesterday", "", " ", "1d", "2026-11-27T10:00:00Z\n",
	} {
		f.Add(s, int64(1795000000))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		now := time.Unix(unix%(1<<35), 0)
		got, err := parseTime(s, now)
		ts := strings.TrimSpace(s)
		if err != nil {
			require.Contains(t, err.Error(), strconv.Quote(ts))
			return
		}
		if d, derr := time.ParseDuration(ts); derr == nil {
			// An age: now minus it.
			require.GreaterOrEqual(t, d, time.Duration(0), "negative age %q accepted", s)
			require.True(t, got.Equal(now.Add(-d)), "%q at %s: %s", s, now, got)
			return
		}
		// A point in time: reads back the same through parseTime.
		again, err := parseTime(got.Format(time.RFC3339Nano), now)
		require.NoError(t, err, "%q -> %s", s, got.Format(time.RFC3339Nano))
		require.True(t, again.Equal(got), "%q -> %s -> %s", s, got, again)
	})
}

// argumentsApp is a command shaped like notify or dead-letters retry: a
// string flag, a bool flag, and positional arguments read by arguments.
func argumentsApp(record func(pos []string, err error, c *cli.Context)) *cli.App {
	return &cli.App{
		Name:            "nb",
		HideHelp:        true,
		HideHelpCommand: true,
		Writer:          io.Discard,
		ErrWriter:       io.Discard,
		ExitErrHandler:  func(*cli.Context, error) {},
		Commands: []*cli.Command{{
			Name:     "cmd",
			HideHelp: true,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "channel"},
				&cli.StringFlag{Name: "reason"},
				&cli.BoolFlag{Name: "json"},
			},
			Action: func(c *cli.Context) error {
				pos, err := arguments(c)
				record(pos, err, c)
				return err
			},
		}},
	}
}

// referenceArguments is what arguments should return for args: Go's flag
// syntax anywhere on the line, "--" ending the flags.
func referenceArguments(args []string) ([]string, map[string]string, error) {
	vals := map[string]string{"channel": "", "reason": "", "json": "false"}
	pos := []string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), vals, nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		if name == "" || name[0] == '-' || name[0] == '=' {
			return nil, nil, errors.New("bad flag syntax")
		}
		name, v, hasValue := strings.Cut(name, "=")
		switch name {
		case "json":
			if !hasValue {
				v = "true"
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, nil, err
			}
			vals[name] = strconv.FormatBool(b)
		case "channel", "reason":
			if !hasValue {
				if i+1 >= len(args) {
					return nil, nil, errors.New("flag needs an argument")
				}
				i++
				v = args[i]
			}
			vals[name] = v
		default:
			return nil, nil, errors.New("flag provided but not defined")
		}
	}
	return pos, vals, nil
}

func FuzzArguments(f *testing.F) {
	for _, s := range []string{
		"", "42", "42 --json", "--json 42", "12 13 --reason r", "--reason r 12 13", "12 --reason -- 13",
		"12 -- --json", "12 -- -5", "-- 12", "--channel c -- 12", "-5", "- 12", "12 -json=false --channel=c",
		"12 --json=maybe", "12 --reason", "12 ---json", "12 --nope", "12 -h", "12 --help", "12 --channel= 13",
		"12 -- -- --json", "a b c --channel x --channel y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		if line == "" {
			args = nil
		}
		var (
			called bool
			pos    []string
			aerr   error
			vals   map[string]string
		)
		app := argumentsApp(func(p []string, err error, c *cli.Context) {
			called, pos, aerr = true, p, err
			vals = map[string]string{"channel": c.String("channel"), "reason": c.String("reason"), "json": strconv.FormatBool(c.Bool("json"))}
		})
		runErr := app.Run(hoistGlobalFlags(app, append([]string{"nb", "cmd"}, args...)))

		wantPos, wantVals, wantErr := referenceArguments(args)
		if wantErr != nil {
			require.True(t, runErr != nil || !called || aerr != nil, "%q accepted: %q %v", args, pos, vals)
			return
		}
		require.NoError(t, runErr, "%q", args)
		require.True(t, called, "%q", args)
		require.NoError(t, aerr, "%q", args)
		if pos == nil {
			pos = []string{}
		}
		require.Equal(t, wantPos, pos, "%q", args)
		require.Equal(t, wantVals, vals, "%q", args)
	})
}
