// Command notified-bridge turns Postgres NOTIFY events into River jobs: one
// job per handler routed to the event's name, exactly once, with nothing lost
// while the bridge is down.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
)

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		// Errors quote event names, database messages and other text that
		// may hold terminal escapes.
		fmt.Fprintln(os.Stderr, "notified-bridge: "+termsafe.String(flagNames(termsafe.OneLine(err.Error()), commandFields(err))))
		stop()
		os.Exit(1)
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
		Flags: globalFlags(),
		Commands: []*cli.Command{
			migrateCommand(),
			routesCommand(),
			installTriggerCommand(),
			runCommand(),
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
