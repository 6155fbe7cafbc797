package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/migrations"
)

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade River's and notified's tables (idempotent)",
		Flags: []cli.Flag{flagJSON()},
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
