package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/migrations"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade River's and notified's tables (idempotent), or with --down revert them",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the migrations that would be applied (or reverted, with --down); change nothing"},
			&cli.BoolFlag{Name: "show-sql", Usage: "print the SQL that would be run, to apply with tools of your own; change nothing"},
			&cli.StringFlag{Name: "down", Usage: "revert one line of migrations to `LINE:VERSION`: notified:N (or N) reverts notified's above N, river:N River's (once notified's are reverted); 0 reverts them all"},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"force"}, Usage: "with --down: do revert, dropping the tables and the history in them"},
			flagJSON(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unexpectedArgument(c, c.Args().First(), "migrate takes no arguments")
			}
			if c.Bool("show-sql") && c.Bool("json") {
				return errors.New("migrate: --show-sql prints SQL, --json prints JSON: give one of them")
			}
			if c.IsSet("down") {
				line, target, err := parseDown(c.String("down"))
				if err != nil {
					return err
				}
				return migrateDown(c, line, target)
			}
			if c.Bool("yes") {
				return errors.New("migrate: --yes confirms a --down: migrating up needs no confirmation")
			}
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			if c.Bool("dry-run") || c.Bool("show-sql") {
				return migratePlan(c, pool)
			}
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

// migratePlan prints what migrate would apply, as a summary (--dry-run) or
// as SQL (--show-sql).
func migratePlan(c *cli.Context, pool *pgxpool.Pool) error {
	p, err := migrations.PlanMigrate(c.Context, pool, c.String("schema"))
	if err != nil {
		return err
	}
	river, notified := p.Versions(migrations.LineRiver), p.Versions(migrations.LineNotified)
	switch {
	case c.Bool("show-sql"):
		fmt.Fprint(c.App.Writer, p.Script())
	case c.Bool("json"):
		return printJSON(c.App.Writer, map[string]any{"schema": p.Schema, "dry_run": true,
			"create_schema": p.CreateSchema, "river_versions": river, "versions": notified})
	default:
		created := ""
		if p.CreateSchema {
			created = " (to be created)"
		}
		fmt.Fprintf(c.App.Writer, "schema %s%s: would apply %d River migration(s) %v and %d notified migration(s) %v; nothing applied (dry run)\n",
			termsafe.String(p.Schema), created, len(river), river, len(notified), notified)
	}
	return nil
}

// migrateDown reverts line's migrations above target, or says what it
// would revert. A revert that drops anything needs --yes.
func migrateDown(c *cli.Context, line migrations.Line, target int) error {
	pool, err := connect(c, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	dryRun := c.Bool("dry-run") || c.Bool("show-sql")
	res, err := migrations.Down(c.Context, pool, c.String("schema"), line, target, true)
	if err != nil {
		return downError(err, line, target)
	}
	if len(res.Reverted) == 0 {
		res.DryRun = dryRun
	} else if !dryRun {
		if !c.Bool("yes") {
			return fmt.Errorf("migrate --down %s:%d would revert %s's migration(s) %v in schema %s, dropping their tables and every row in them (%s): add --yes to do it, or --dry-run / --show-sql to see what it runs",
				line, target, line, res.Versions(), res.Schema, lost(line))
		}
		if res, err = migrations.Down(c.Context, pool, c.String("schema"), line, target, false); err != nil {
			return downError(err, line, target)
		}
	}
	switch {
	case c.Bool("show-sql"):
		fmt.Fprint(c.App.Writer, res.Script())
	case c.Bool("json"):
		return printJSON(c.App.Writer, map[string]any{"schema": res.Schema, "line": res.Line, "target": res.Target,
			"reverted": res.Versions(), "dry_run": res.DryRun})
	default:
		printDown(c.App.Writer, res)
	}
	return nil
}

// printDown says what a down migration reverted, or would revert.
func printDown(w io.Writer, res *migrations.DownResult) {
	schema := termsafe.String(res.Schema)
	switch {
	case len(res.Reverted) == 0:
		fmt.Fprintf(w, "schema %s: no %s migration above version %d: nothing to revert\n", schema, res.Line, res.Target)
	case res.DryRun:
		fmt.Fprintf(w, "schema %s: would revert %d %s migration(s) %v, leaving version %d; nothing reverted (dry run)\n",
			schema, len(res.Reverted), res.Line, res.Versions(), res.Target)
	default:
		fmt.Fprintf(w, "schema %s: reverted %d %s migration(s) %v, now at version %d\n",
			schema, len(res.Reverted), res.Line, res.Versions(), res.Target)
	}
}

// lost says what reverting line's migrations loses.
func lost(line migrations.Line) string {
	if line == migrations.LineRiver {
		return "River's jobs among them"
	}
	return "routes, dispatch records, job history and the outbox's backlog among them"
}

// downError is Down's error, with the command that reverts notified's
// migrations when River's line is refused.
func downError(err error, line migrations.Line, target int) error {
	if errors.Is(err, migrations.ErrNotifiedUsesRiver) {
		return fmt.Errorf("migrate --down %s:%d: %w (--down notified:0)", line, target, err)
	}
	return fmt.Errorf("migrate --down %s:%d: %w", line, target, err)
}

// parseDown reads --down: LINE:VERSION, or VERSION for notified's line.
func parseDown(s string) (migrations.Line, int, error) {
	line, version := string(migrations.LineNotified), s
	if l, v, ok := strings.Cut(s, ":"); ok {
		line, version = l, v
	}
	n, err := strconv.Atoi(version)
	if (line != string(migrations.LineNotified) && line != string(migrations.LineRiver)) || err != nil || n < 0 {
		return "", 0, fmt.Errorf("migrate: --down %q is not LINE:VERSION: use notified:VERSION (or VERSION) or river:VERSION, e.g. --down notified:1; 0 reverts every migration of the line", s)
	}
	return migrations.Line(line), n, nil
}
