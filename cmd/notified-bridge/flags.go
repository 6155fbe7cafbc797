package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/logging"
	"github.com/notified/notified/migrations"
)

// globalFlags are the flags every command reads. The app declares them with
// their environment variables, for the options written before the command;
// every command declares them again (see commandCopy), for the options
// written after it. They are made anew for each declaration, as urfave/cli
// keeps an environment variable's value in the flag.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "database-url", EnvVars: []string{"DATABASE_URL"},
			Usage: "Postgres connection `URL` or key=value DSN",
		},
		&cli.StringFlag{
			Name: "schema", EnvVars: []string{"NOTIFIED_SCHEMA"},
			Usage: "schema of River's and notified's tables (default: the connection's current schema)",
		},
		&cli.StringFlag{
			Name: "log-level", EnvVars: []string{"NOTIFIED_LOG_LEVEL"}, Value: "info",
			Usage: "debug, info, warn or error",
		},
		&cli.StringFlag{
			Name: "log-format", EnvVars: []string{"NOTIFIED_LOG_FORMAT"}, Value: "auto",
			Usage: "text, json, or auto (text on a terminal, JSON otherwise)",
		},
	}
}

// Flags shared by several commands. Each call makes a new flag: urfave/cli
// writes into a flag when it parses, so a flag must not be shared between
// commands or apps.
func flagTable() cli.Flag {
	return &cli.StringFlag{
		Name: "table", EnvVars: []string{"NOTIFIED_EVENTS_TABLE_NAME"}, Value: bridge.DefaultTable,
		Usage: "events table, optionally schema-qualified (schema.table)",
	}
}

func flagIDField() cli.Flag {
	return &cli.StringFlag{
		Name: "id-field", EnvVars: []string{"NOTIFIED_ID_FIELD_NAME"}, Value: bridge.DefaultIDColumn,
		Usage: "id column of the events table; the notification payload is its value",
	}
}

func flagNameField() cli.Flag {
	return &cli.StringFlag{
		Name: "name-field", EnvVars: []string{"NOTIFIED_NAME_FIELD_NAME"}, Value: bridge.DefaultNameColumn,
		Usage: "column of the events table that holds the event name",
	}
}

func flagChannel() cli.Flag {
	return &cli.StringFlag{
		Name: "channel", EnvVars: []string{"NOTIFIED_CHANNEL"}, Value: bridge.DefaultChannel,
		Usage: "NOTIFY channel, spelled exactly as producers pass it to pg_notify",
	}
}

func flagJSON() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"} }

const demoTimeout = 2 * time.Minute

// commandCopy is a global flag as a command declares it: hidden (the app's
// help lists it) and without environment variables, so that it is set only
// when written after the command; otherwise inheritGlobals gives it the
// app's value.
func commandCopy(f *cli.StringFlag) *cli.StringFlag {
	return &cli.StringFlag{Name: f.Name, Usage: f.Usage, Value: f.Value, Hidden: true}
}

// commandHelpTemplate is urfave/cli's, with where options go.
var commandHelpTemplate = cli.CommandHelpTemplate +
	"\nOptions go before the arguments. The global options (notified-bridge --help) may be given here too.\n"

// prepare declares the global flags on c and its subcommands, and has them
// check their flags before they run.
func prepare(c *cli.Command) {
	for _, f := range globalFlags() {
		c.Flags = append(c.Flags, commandCopy(f.(*cli.StringFlag)))
	}
	if len(c.Subcommands) == 0 {
		c.CustomHelpTemplate = commandHelpTemplate
	}
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		if err := inheritGlobals(ctx); err != nil {
			return err
		}
		if err := refuseEmptyNames(ctx); err != nil {
			return err
		}
		if err := setUp(ctx); err != nil {
			return err
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
	// Errors are one line, naming the command, without the help.
	c.OnUsageError = func(ctx *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%s: %w", commandName(ctx), err)
	}
	for _, sub := range c.Subcommands {
		prepare(sub)
	}
}

// inheritGlobals gives the global flags not written after the command the
// value they have where they were written before it (or in the environment).
func inheritGlobals(c *cli.Context) error {
	parent := c.Lineage()[1]
	for _, f := range globalFlags() {
		name := f.Names()[0]
		if !c.IsSet(name) && parent.IsSet(name) {
			if err := c.Set(name, parent.String(name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setUpAppOnly checks the global flags when no command is given: a command
// checks them itself, wherever they were written.
func setUpAppOnly(c *cli.Context) error {
	if c.Args().Present() {
		return nil
	}
	return setUp(c)
}

// setUp sets the default logger and checks the schema from the global flags.
func setUp(c *cli.Context) error {
	logger, err := logging.New(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	if err := migrations.ValidateSchema(c.String("schema")); err != nil {
		return err // names Schema, which main prints as --schema
	}
	return nil
}

// namedFlags are the flags whose empty value would silently mean their
// default: given empty (--channel "", or NOTIFIED_CHANNEL=), they are an
// error, as a forgotten shell variable should be.
var namedFlags = []string{"table", "id-field", "name-field", "channel"}

// refuseEmptyNames refuses the command's namedFlags given empty.
func refuseEmptyNames(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if slices.Contains(namedFlags, name) && c.IsSet(name) && strings.TrimSpace(c.String(name)) == "" {
			return fmt.Errorf("%s is empty: give a value, or leave it unset for the default", flagAndEnv(f))
		}
	}
	return nil
}

// flagAndEnv names a flag and its environment variable: "--channel or
// NOTIFIED_CHANNEL".
func flagAndEnv(f cli.Flag) string {
	s := "--" + f.Names()[0]
	if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
		s += " or " + ev.GetEnvVars()[0]
	}
	return s
}

// commandName is the command as typed after the program's name: "routes add".
func commandName(c *cli.Context) string {
	return strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
}

// positional returns the command's n arguments.
func positional(c *cli.Context, n int, usage string) ([]string, error) {
	args := c.Args().Slice()
	if len(args) < n {
		return nil, errors.New(usage)
	}
	if len(args) > n {
		return nil, unexpectedArgument(c, args[n], usage)
	}
	return args, nil
}

// unexpectedArgument says that arg is one argument too many, or, for an
// option written after the arguments, where options go.
func unexpectedArgument(c *cli.Context, arg, hint string) error {
	if len(arg) > 1 && arg[0] == '-' {
		return fmt.Errorf("%s: %q after the arguments: options go before them (see `notified-bridge %s --help`)",
			commandName(c), arg, commandName(c))
	}
	return fmt.Errorf("%s: unexpected argument %q: %s", commandName(c), arg, hint)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
