package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete history older than --retention now (running bridges also prune every hour)",
		Flags: []cli.Flag{flagRetention(), flagJSON()},
		Action: func(c *cli.Context) error {
			keep, err := retention(c)
			if err != nil {
				return err
			}
			if keep == bridge.KeepForever {
				if c.Bool("json") {
					return printJSON(c.App.Writer, history.Pruned{})
				}
				fmt.Fprintln(c.App.Writer, "history is kept forever (--retention forever): nothing pruned")
				return nil
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			before := time.Now().Add(-keep)
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
