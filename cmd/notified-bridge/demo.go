package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/demo"
	"github.com/notified/notified/internal/logging"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name: "demo",
		Usage: "see it work in a minute: a bridge, a worker with the example handlers, a filtered webhook route and a route ordered per customer, sample events (some fail and retry), then their history;" +
			" uses DATABASE_URL when it is set, or else starts a throwaway Postgres",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "events", Value: 24, Usage: "sample events to insert"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the demo's schema afterwards (with DATABASE_URL)"},
			&cli.DurationFlag{Name: "timeout", Value: demoTimeout, Usage: "give up if the jobs have not finished by then"},
		},
		Action: func(c *cli.Context) error {
			if c.Int("events") < 1 {
				return fmt.Errorf("--events %d must be at least 1", c.Int("events"))
			}
			if c.Duration("timeout") <= 0 {
				return fmt.Errorf("--timeout %s must be positive", c.Duration("timeout"))
			}
			if c.String("schema") != "" {
				return errors.New("demo works in a schema of its own: drop --schema / NOTIFIED_SCHEMA")
			}
			// A database given must answer: say so the way every command
			// does, in one line with each reason once.
			if c.String("database-url") != "" {
				pool, err := connect(c, 1)
				if err != nil {
					return err
				}
				pool.Close()
			}
			// The components log warnings and errors only, unless asked
			// otherwise; the demo prints the story.
			logger := slog.Default()
			if !c.IsSet("log-level") {
				h, err := logging.New(c.App.ErrWriter, "warn", c.String("log-format"))
				if err != nil {
					return err
				}
				logger = h
			}
			err := demo.Run(c.Context, demo.Options{
				DatabaseURL: c.String("database-url"), Events: c.Int("events"), Keep: c.Bool("keep"),
				Timeout: c.Duration("timeout"), Out: c.App.Writer, Live: logging.IsTerminal(c.App.Writer),
				Logger: logger,
			})
			if c.Context.Err() != nil {
				fmt.Fprintln(c.App.Writer, "\ninterrupted: everything stopped and cleaned up")
				return nil
			}
			return err
		},
	}
}
