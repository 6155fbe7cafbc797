package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/publish"
)

func notifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "notify",
		Usage:     "announce an existing event by id, durably (outbox row and pg_notify), like NotifyClient",
		ArgsUsage: "ID",
		Flags:     []cli.Flag{flagChannel(), flagJSON()},
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
