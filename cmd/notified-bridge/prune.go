package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/history"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete history older than --retention now (running bridges also prune every hour)",
		Flags: []cli.Flag{flagRetention(), flagJSON()},
		Action: func(c *cli.Context) error {
			retention := c.Duration("retention")
			if retention < 0 {
				return fmt.Errorf("--retention %s: give a positive duration, such as 720h for 30 days", retention)
			}
			if retention == 0 {
				// As for run: 0 keeps history forever.
				if c.Bool("json") {
					return printJSON(c.App.Writer, history.Pruned{})
				}
				fmt.Fprintln(c.App.Writer, "retention 0 keeps history forever: nothing pruned")
				return nil
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			before := time.Now().Add(-retention)
			p, err := history.NewStore(pool, c.String("schema")).Prune(c.Context, before)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, p)
			}
			fmt.Fprintf(c.App.Writer, "pruned history before %s: %d events, %d job outcomes, %d replays, %d stale bridges\n",
				fmtTime(before), p.Events, p.Jobs, p.Replays, p.Bridges)
			return nil
		},
	}
}
