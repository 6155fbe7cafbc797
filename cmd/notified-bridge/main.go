// Command notified-bridge turns Postgres NOTIFY events into River jobs: one
// job per handler routed to the event's name, exactly once, with nothing lost
// while the bridge is down.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/publish"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
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
	app := newApp()
	if err := app.RunContext(ctx, hoistGlobalFlags(app, os.Args)); err != nil {
		// Errors quote event names, database messages and other text that
		// may hold terminal escapes.
		fmt.Fprintln(os.Stderr, "notified-bridge: "+termsafe.String(oneLine(err)))
		stop()
		os.Exit(1)
	}
}

// endOfFlags stands in the arguments for a "--" that urfave/cli consumed; it
// cannot come from a command line (no argument holds a NUL byte).
const endOfFlags = "\x00end-of-flags"

// hoistGlobalFlags moves the global flags written after the command
// (`notified-bridge migrate --schema app`) before it, where urfave/cli
// expects them, so that they may be written anywhere. "--" ends the flags.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Every global flag takes a value.
	global := map[string]bool{}
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			global[n] = true
		}
	}
	var before, after []string
	command := -1
	var cmd *cli.Command // the (sub)command whose flags are being read
	parsing := true      // urfave/cli still reads flags (no argument yet)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if command >= 0 && parsing {
				// urfave/cli drops a "--" met before the command's first
				// argument; the marker tells arguments that the flags
				// ended there.
				after = append(after, "--", endOfFlags)
				after = append(after, args[i+1:]...)
			} else {
				after = append(after, args[i:]...)
			}
			break
		}
		if command < 0 && !strings.HasPrefix(a, "-") {
			command = i
			cmd = findCommand(app.Commands, a)
			after = append(after, a)
			continue
		}
		if command < 0 {
			before = append(before, a)
			if name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "="); global[name] && !hasValue && i+1 < len(args) {
				i++ // the flag's value, not the command
				before = append(before, args[i])
			}
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if parsing {
				if sub := findCommand(subcommands(cmd), a); sub != nil {
					cmd = sub // a subcommand reads flags of its own
				} else {
					parsing = false
				}
			}
			after = append(after, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !global[name] {
			after = append(after, a)
			if parsing && !hasValue && takesValue(cmd, name) && i+1 < len(args) {
				i++ // its value, whatever it looks like
				after = append(after, args[i])
			}
			continue
		}
		if !hasValue && i+1 == len(args) {
			// No value: left in place, for urfave/cli to say so.
			after = append(after, a)
			continue
		}
		before = append(before, a)
		if !hasValue {
			i++
			before = append(before, args[i])
		}
	}
	if command < 0 {
		return args
	}
	out := append([]string{args[0]}, before...)
	return append(out, after...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if slices.Contains(c.Names(), name) {
			return c
		}
	}
	return nil
}

func subcommands(c *cli.Command) []*cli.Command {
	if c == nil {
		return nil
	}
	return c.Subcommands
}

// takesValue reports whether c has a flag called name that reads a value
// from the next argument (any flag but a boolean one).
func takesValue(c *cli.Command, name string) bool {
	if c == nil {
		return false
	}
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			_, isBool := f.(*cli.BoolFlag)
			return !isBool
		}
	}
	return false
}

// oneLine keeps an error to one line, as a user reads it.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

var (
	flagDatabaseURL = &cli.StringFlag{
		Name: "database-url", EnvVars: []string{"DATABASE_URL"},
		Usage: "Postgres connection `URL` or key=value DSN",
	}
	flagSchema = &cli.StringFlag{
		Name: "schema", EnvVars: []string{"NOTIFIED_SCHEMA"},
		Usage: "schema of River's and notified's tables (default: the connection's current schema)",
	}
	flagTable = &cli.StringFlag{
		Name: "table", EnvVars: []string{"NOTIFIED_EVENTS_TABLE_NAME"}, Value: bridge.DefaultTable,
		Usage: "events table, optionally schema-qualified (schema.table)",
	}
	flagIDField = &cli.StringFlag{
		Name: "id-field", EnvVars: []string{"NOTIFIED_ID_FIELD_NAME"}, Value: bridge.DefaultIDColumn,
		Usage: "id column of the events table; the notification payload is its value",
	}
	flagNameField = &cli.StringFlag{
		Name: "name-field", EnvVars: []string{"NOTIFIED_NAME_FIELD_NAME"}, Value: bridge.DefaultNameColumn,
		Usage: "column of the events table that holds the event name",
	}
	flagChannel = &cli.StringFlag{
		Name: "channel", EnvVars: []string{"NOTIFIED_CHANNEL"}, Value: bridge.DefaultChannel,
		Usage: "NOTIFY channel, spelled exactly as producers pass it to pg_notify",
	}
	demoTimeout   = 2 * time.Minute
	flagJSON      = &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
	flagRetention = &cli.DurationFlag{
		Name: "retention", EnvVars: []string{"NOTIFIED_RETENTION"}, Value: bridge.DefaultRetention,
		Usage: "how long to keep history (dispatch records, job outcomes, replays); 0 keeps it forever",
	}
)

func newApp() *cli.App {
	app := baseApp()
	for _, c := range app.Commands {
		refuseEmptyNames(c)
	}
	return app
}

// namedFlags are the flags whose empty value would silently mean their
// default: given empty (--channel "", or NOTIFIED_CHANNEL=), they are an
// error, as a forgotten shell variable should be.
var namedFlags = []string{"table", "id-field", "name-field", "channel"}

// refuseEmptyNames makes c and its subcommands refuse namedFlags given empty.
func refuseEmptyNames(c *cli.Command) {
	before := c.Before
	c.Before = func(ctx *cli.Context) error {
		for _, f := range c.Flags {
			name := f.Names()[0]
			if slices.Contains(namedFlags, name) && ctx.IsSet(name) && strings.TrimSpace(ctx.String(name)) == "" {
				env := ""
				if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
					env = " or " + ev.GetEnvVars()[0]
				}
				return fmt.Errorf("--%s%s is empty: give a value, or leave it unset for the default", name, env)
			}
		}
		if before != nil {
			return before(ctx)
		}
		return nil
	}
	for _, sub := range c.Subcommands {
		refuseEmptyNames(sub)
	}
}

func baseApp() *cli.App {
	return &cli.App{
		Name:  "notified-bridge",
		Usage: "turn Postgres NOTIFY events into durable, retried River jobs",
		Description: "Producers insert rows into an events table whose trigger calls pg_notify(channel, id::text).\n" +
			"The bridge dispatches every committed event as one River job per handler routed to its name,\n" +
			"exactly once, including events committed while it was down.\n\n" +
			"Getting started: migrate, install-trigger, routes add, run.",
		Flags: []cli.Flag{
			flagDatabaseURL, flagSchema,
			&cli.StringFlag{Name: "log-level", EnvVars: []string{"NOTIFIED_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", EnvVars: []string{"NOTIFIED_LOG_FORMAT"}, Value: "auto", Usage: "text, json, or auto (text on a terminal, JSON otherwise)"},
		},
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
		Before: func(c *cli.Context) error {
			logger, err := newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
			if err != nil {
				return err
			}
			slog.SetDefault(logger)
			if err := migrations.ValidateSchema(c.String("schema")); err != nil {
				return fmt.Errorf("--schema / NOTIFIED_SCHEMA: %w", err)
			}
			return nil
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors on one line
		ErrWriter:      os.Stderr,
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return slog.New(slog.NewTextHandler(w, opts)), nil
			}
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q is not one of text, json, auto", format)
	}
}

// connect opens a pool and checks that the database answers, so that a
// wrong URL fails at once with a message that says what to fix.
func connect(c *cli.Context, maxConns int32) (*pgxpool.Pool, error) {
	url := c.String("database-url")
	if url == "" {
		return nil, errors.New("no database: set DATABASE_URL or --database-url (e.g. postgres://user@localhost:5432/app)")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL is not valid: %s", redactParseError(err))
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "notified-bridge"
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(c.Context, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(c.Context); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s on %s:%d: %s: check DATABASE_URL and that the server is running",
			cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port, connectReason(err))
	}
	return pool, nil
}

// connectReason is the server's or the network's reason a connection failed,
// without the URL (which may hold a password).
func connectReason(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		err = connErr.Unwrap()
	}
	// pgx tries each address and TLS mode in turn and joins their errors,
	// which are often the same: say each once.
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range joined.Unwrap() {
			if msg := e.Error(); !slices.Contains(parts, msg) {
				parts = append(parts, msg)
			}
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

// redactParseError drops the URL that pgx quotes in parse errors.
func redactParseError(err error) string {
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) {
		if inner := perr.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "cannot parse it: use postgres://user:password@host:5432/database"
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade River's and notified's tables (idempotent)",
		Flags: []cli.Flag{flagJSON},
		Action: func(c *cli.Context) error {
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := migrations.Migrate(c.Context, pool, c.String("schema"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "schema %s: applied %d River migration(s) %v and %d notified migration(s) %v\n",
				termsafe.String(res.Schema), len(res.RiverVersions), res.RiverVersions, len(res.Versions), res.Versions)
			return nil
		},
	}
}

func routesCommand() *cli.Command {
	return &cli.Command{
		Name:  "routes",
		Usage: "add, list and remove routes from event names to handler kinds",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "route events named EVENT to the handler kind KIND (updates options if the route exists)",
				ArgsUsage: "EVENT KIND",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "queue", Value: routes.DefaultQueue, Usage: "River queue of the jobs"},
					&cli.IntFlag{Name: "priority", Value: routes.DefaultPriority, Usage: "River priority of the jobs, 1 (highest) to 4"},
					&cli.IntFlag{Name: "max-attempts", Value: routes.DefaultMaxAttempts, Usage: "attempts before River discards a failing job"},
					flagJSON,
				},
				Action: func(c *cli.Context) error {
					args, err := positional(c, 2, "routes add takes two arguments, EVENT and KIND, e.g. routes add user_signed_up send_welcome_email")
					if err != nil {
						return err
					}
					r := routes.Route{Event: args[0], Kind: args[1], Queue: c.String("queue"),
						Priority: c.Int("priority"), MaxAttempts: c.Int("max-attempts")}
					// The Go API reads 0 as "the default"; on the command line
					// an explicit 0 is a mistake.
					if r.Priority == 0 {
						return fmt.Errorf("route %s -> %s: priority 0 is out of range: use 1 (highest) to 4", r.Event, r.Kind)
					}
					if r.MaxAttempts == 0 {
						return fmt.Errorf("route %s -> %s: max attempts 0 is out of range: use 1 to 32767", r.Event, r.Kind)
					}
					if err := r.Validate(); err != nil {
						return err
					}
					pool, err := connectMigrated(c)
					if err != nil {
						return err
					}
					defer pool.Close()
					if err := routes.NewStore(pool, c.String("schema")).Add(c.Context, r); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, r)
					}
					fmt.Fprintf(c.App.Writer, "route added: %s -> %s (queue %s, priority %d, max attempts %d)\n",
						termsafe.String(r.Event), termsafe.String(r.Kind), termsafe.String(r.Queue), r.Priority, r.MaxAttempts)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list every route",
				Flags: []cli.Flag{flagJSON},
				Action: func(c *cli.Context) error {
					pool, err := connectMigrated(c)
					if err != nil {
						return err
					}
					defer pool.Close()
					rs, err := routes.NewStore(pool, c.String("schema")).List(c.Context)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if rs == nil {
							rs = []routes.Route{}
						}
						return printJSON(c.App.Writer, rs)
					}
					if len(rs) == 0 {
						fmt.Fprintln(c.App.Writer, "no routes: add one with `notified-bridge routes add EVENT KIND`")
						return nil
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "EVENT\tKIND\tQUEUE\tPRIORITY\tMAX ATTEMPTS")
					for _, r := range rs {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", termsafe.String(r.Event), termsafe.String(r.Kind), termsafe.String(r.Queue),
							r.Priority, r.MaxAttempts)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "remove",
				Usage:     "remove the route from EVENT to KIND",
				ArgsUsage: "EVENT KIND",
				Flags:     []cli.Flag{flagJSON},
				Action: func(c *cli.Context) error {
					args, err := positional(c, 2, "routes remove takes two arguments, EVENT and KIND")
					if err != nil {
						return err
					}
					pool, err := connectMigrated(c)
					if err != nil {
						return err
					}
					defer pool.Close()
					ok, err := routes.NewStore(pool, c.String("schema")).Remove(c.Context, args[0], args[1])
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("no route %s -> %s: see `notified-bridge routes list`", args[0], args[1])
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, map[string]any{"event": args[0], "kind": args[1], "removed": true})
					}
					fmt.Fprintf(c.App.Writer, "route removed: %s -> %s\n", termsafe.String(args[0]), termsafe.String(args[1]))
					return nil
				},
			},
		},
	}
}

// connectMigrated connects and checks that notified's tables are there.
func connectMigrated(c *cli.Context) (*pgxpool.Pool, error) {
	pool, err := connect(c, 2)
	if err != nil {
		return nil, err
	}
	if err := migrations.Check(c.Context, pool, c.String("schema")); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func installTriggerCommand() *cli.Command {
	return &cli.Command{
		Name:  "install-trigger",
		Usage: "install the capture trigger: pg_notify(channel, id::text) plus an outbox row, after each insert",
		Flags: []cli.Flag{
			flagTable, flagChannel, flagIDField,
			&cli.BoolFlag{Name: "restart-sequence",
				Usage: "when ids the id column's sequence will produce are already recorded for the channel (a recreated table), restart the sequence past them, in the install's transaction"},
			&cli.BoolFlag{Name: "allow-recorded-ids",
				Usage: "install even when ids the id column's sequence will produce are already recorded for the channel: their events will be skipped as already dispatched"},
			&cli.BoolFlag{Name: "print", Usage: "print the SQL instead of running it"},
			flagJSON,
		},
		Action: func(c *cli.Context) error {
			opts := trigger.Options{Schema: c.String("schema"), Table: c.String("table"),
				Channel: c.String("channel"), IDColumn: c.String("id-field"),
				RestartSequence: c.Bool("restart-sequence"), AllowRecordedIDs: c.Bool("allow-recorded-ids")}
			if opts.RestartSequence && opts.AllowRecordedIDs {
				return errors.New("install-trigger: --restart-sequence and --allow-recorded-ids exclude each other: restart the sequence past the recorded ids, or let it produce them")
			}
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			if c.Bool("print") {
				r, err := trigger.Inspect(c.Context, pool, opts)
				if err != nil {
					return installTriggerError(err, opts.Table)
				}
				fmt.Fprint(c.App.Writer, r.SQL)
				printWarnings(c, r.Warnings)
				return nil
			}
			r, err := trigger.Apply(c.Context, pool, opts)
			if err != nil {
				return installTriggerError(err, opts.Table)
			}
			printWarnings(c, r.Warnings)
			if c.Bool("json") {
				out := map[string]string{"trigger": r.Trigger, "table": opts.Table,
					"channel": opts.Channel, "id_column": opts.IDColumn}
				if r.Restart != nil {
					out["restarted_sequence"] = r.Restart.Sequence
					out["restarted_at"] = strconv.FormatInt(r.Restart.Value, 10)
				}
				if len(r.Warnings) > 0 {
					out["warning"] = strings.Join(r.Warnings, "\n")
				}
				return printJSON(c.App.Writer, out)
			}
			fmt.Fprintf(c.App.Writer, "trigger %s installed on %s: notifies channel %q with %s::text and records the outbox row\n",
				termsafe.String(r.Trigger), termsafe.String(opts.Table), opts.Channel, termsafe.String(opts.IDColumn))
			if r.Restart != nil {
				fmt.Fprintf(c.App.Writer, "%s, past the ids recorded for channel %q\n", termsafe.String(r.Restart.String()), opts.Channel)
			}
			return nil
		},
	}
}

// installTriggerError names the flags where the trigger package names its
// options.
func installTriggerError(err error, table string) error {
	var recorded *trigger.RecordedIDsError
	if errors.As(err, &recorded) {
		return fmt.Errorf("install trigger on %s: %s", table, recorded.Explain("--restart-sequence", "--channel", "--allow-recorded-ids"))
	}
	return err
}

// printWarnings prints each warning on standard error, on one line.
func printWarnings(c *cli.Context, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+termsafe.String(oneLineText(w)))
	}
}

func notifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "notify",
		Usage:     "announce an existing event by id, durably (outbox row and pg_notify), like NotifyClient",
		ArgsUsage: "ID",
		Flags:     []cli.Flag{flagChannel, flagJSON},
		Action: func(c *cli.Context) error {
			args, err := positional(c, 1, "notify takes one argument, the event id")
			if err != nil {
				return err
			}
			pub, err := publish.New(c.String("schema"), c.String("channel"))
			if err != nil {
				return err
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := pub.Notify(c.Context, pool, args[0]); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]string{"event_id": args[0], "channel": c.String("channel")})
			}
			fmt.Fprintf(c.App.Writer, "notified %s on channel %q\n", termsafe.String(args[0]), c.String("channel"))
			return nil
		},
	}
}

// positional returns the command's n arguments, parsing any flags written
// after them (routes add E H --queue q), which urfave/cli leaves unparsed.
func positional(c *cli.Context, n int, usage string) ([]string, error) {
	args, err := arguments(c)
	if err != nil {
		return nil, err
	}
	if len(args) < n {
		return nil, errors.New(usage)
	}
	if len(args) > n {
		name := strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
		return nil, fmt.Errorf("%s: unexpected argument %q: %s", name, args[n], usage)
	}
	return args, nil
}

// arguments returns the command's arguments, parsing the flags written
// among or after them (dead-letters retry 12 13 --reason r), which
// urfave/cli leaves unparsed. "--" ends the flags.
func arguments(c *cli.Context) ([]string, error) {
	args := c.Args().Slice()
	name := strings.TrimPrefix(c.Command.HelpName, c.App.Name+" ")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(fs); err != nil {
			return nil, err
		}
	}
	// Split the flags (each with its value) from the arguments here rather
	// than in fs.Parse, which would consume a "--" after a flag and lose
	// where the flags ended.
	var pos, flagArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == endOfFlags:
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "--":
			rest := args[i+1:]
			if len(rest) > 0 && rest[0] == endOfFlags {
				rest = rest[1:]
			}
			pos = append(pos, rest...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flagArgs = append(flagArgs, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !hasValue && takesValue(c.Command, name) && i+1 < len(args) {
				i++ // its value, whatever it looks like
				flagArgs = append(flagArgs, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	if err := fs.Parse(flagArgs); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err != nil {
			return
		}
		if multi, ok := f.Value.(interface{ Value() []string }); ok {
			for _, v := range multi.Value() {
				if err = c.Set(f.Name, v); err != nil {
					return
				}
			}
			return
		}
		err = c.Set(f.Name, f.Value.String())
	})
	if err != nil {
		return nil, err
	}
	return pos, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
