// Command notified-bridge turns Postgres NOTIFY events into River jobs: one
// job per handler routed to the event's name, exactly once, with nothing lost
// while the bridge is down.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
)

// version is the version the binary reports: --version, status, and the
// bridges it runs, in notified_bridge. Empty, it comes from the build
// information (see buildVersion); a release sets it at build time with
// -ldflags "-X main.version=v1.2.3".
var version string

// versionString is the version the binary reports: version when set at
// build time, else buildVersion's.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return buildVersion(bi)
}

// buildVersion is the version of the build bi describes: the module
// version ("devel" when built from a source tree without one), followed by
// the revision, its time and whether the tree was modified when Go recorded
// them and the module version does not already name the revision.
func buildVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" || strings.Contains(v, rev) {
		return v
	}
	parts := []string{"rev " + rev}
	if at != "" {
		parts = append(parts, at)
	}
	if modified {
		parts = append(parts, "modified")
	}
	return v + " (" + strings.Join(parts, ", ") + ")"
}

// Exit statuses: a command that failed exits 1; one stopped by SIGINT or
// SIGTERM after stopping cleanly exits as shells report a process killed by
// the signal, 128 plus its number.
const (
	exitFailure   = 1
	exitInterrupt = 128 + int(syscall.SIGINT)  // 130
	exitTerminate = 128 + int(syscall.SIGTERM) // 143
)

func main() {
	ctx, received, stop := signalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newApp().RunContext(ctx, os.Args)
	if err != nil {
		// Errors quote event names, database messages and other text that
		// may hold terminal escapes.
		fmt.Fprintln(os.Stderr, "notified-bridge: "+termsafe.String(flagNames(termsafe.OneLine(err.Error()), commandFields(err))))
	}
	stop()
	sig := received()
	if code := exitStatus(err, sig); code != 0 {
		os.Exit(code)
	}
}

// exitStatus is the exit status of a command that returned err after sig
// was received (nil: none was).
func exitStatus(err error, sig os.Signal) int {
	switch {
	case err != nil:
		return exitFailure
	case sig == os.Interrupt:
		return exitInterrupt
	case sig == syscall.SIGTERM:
		return exitTerminate
	default:
		return 0
	}
}

func newApp() *cli.App {
	app := &cli.App{
		Name:  "notified-bridge",
		Usage: "turn Postgres NOTIFY events into durable, retried River jobs",
		UsageText: "notified-bridge [global options] command [options] [arguments...]\n\n" +
			"Global options go before the command or after it; every option goes before the command's arguments\n" +
			"(notify --channel orders 42, not notify 42 --channel orders). \"--\" ends the options.",
		Description: "Producers insert rows into an events table whose trigger calls pg_notify(channel, id::text).\n" +
			"The bridge dispatches every committed event as one River job per handler routed to its name,\n" +
			"exactly once, including events committed while it was down.\n\n" +
			"Getting started: migrate, install-trigger, routes add, run.",
		Version: versionString(),
		Flags:   globalFlags(),
		Commands: []*cli.Command{
			migrateCommand(),
			routesCommand(),
			lanesCommand(),
			installTriggerCommand(),
			uninstallTriggerCommand(),
			runCommand(),
			workCommand(),
			notifyCommand(),
			historyCommand(),
			statusCommand(),
			replayCommand(),
			deadLettersCommand(),
			pruneCommand(),
			setupCommand(),
			healthcheckCommand(),
			demoCommand(),
			benchCommand(),
		},
		Before:         setUpAppOnly,
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors on one line
		ErrWriter:      os.Stderr,
	}
	for _, c := range app.Commands {
		prepare(c)
	}
	return app
}
