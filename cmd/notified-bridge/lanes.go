package main

import (
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/lanes"
)

func lanesCommand() *cli.Command {
	return &cli.Command{
		Name:        "lanes",
		Usage:       "list the lanes of ordered routes and resume stopped ones",
		Subcommands: []*cli.Command{lanesListCommand(), lanesResumeCommand()},
	}
}

func lanesListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the lanes that have jobs: their head job and how many wait",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kind", Usage: "only the lanes of this handler kind"},
			&cli.BoolFlag{Name: "stopped", Usage: "only the lanes stopped at a failure"},
			&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most this many lanes"},
			flagChannel(), flagJSON(),
		},
		Action: func(c *cli.Context) error {
			if _, err := positional(c, 0, "lanes list takes no arguments"); err != nil {
				return err
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			ls, err := lanes.NewStore(pool, c.String("schema")).List(c.Context, lanes.ListOptions{
				Channel: c.String("channel"), Kind: c.String("kind"), Stopped: c.Bool("stopped"), Limit: c.Int("limit")})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if ls == nil {
					ls = []lanes.Lane{}
				}
				return printJSON(c.App.Writer, ls)
			}
			if len(ls) == 0 {
				fmt.Fprintln(c.App.Writer, "no lanes with jobs")
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tKEY\tHEAD JOB\tSTATE\tWAITING\tSINCE")
			for _, l := range ls {
				head, state, since := "-", l.HeadState, l.CreatedAt
				switch {
				case l.Stopped():
					head, state = strconv.FormatInt(*l.StoppedJobID, 10), "STOPPED at this failed job"
					since = *l.StoppedAt
				case l.HeadJobID != nil:
					head = strconv.FormatInt(*l.HeadJobID, 10)
				}
				if state == "" {
					state = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", termsafe.String(l.Kind), termsafe.String(l.Key), head, state, l.Waiting,
					since.Local().Format(time.DateTime))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(ls) == c.Int("limit") {
				fmt.Fprintf(c.App.Writer, "showing the first %d lanes: narrow with --kind or --stopped, or raise --limit\n", len(ls))
			}
			return nil
		},
	}
}

func lanesResumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "resume the lane of KIND and KEY stopped at a failure: it goes on with the job after the failed one, or retries it first",
		ArgsUsage: "KIND KEY",
		Description: "KEY is the lane's key as `lanes list` shows it, as JSON text: 42 for a number, '\"A-17\"' for a string.\n\n" +
			"Examples:\n" +
			"  notified-bridge lanes resume --reason 'refunded by hand' fulfil 42\n" +
			"  notified-bridge lanes resume --retry-failed --reason 'warehouse back' fulfil '\"A-17\"'",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "retry-failed", Usage: "run the failed job again first (with one more attempt if it used them all), holding the lane until it ends"},
			&cli.StringFlag{Name: "reason", Usage: "why, recorded with the resume (required)"},
			flagChannel(), flagJSON(),
		},
		Action: func(c *cli.Context) error {
			args, err := positional(c, 2, "lanes resume takes two arguments, KIND and KEY, as `notified-bridge lanes list --stopped` shows them")
			if err != nil {
				return err
			}
			if c.String("reason") == "" {
				return errors.New("lanes resume needs a reason, for the record: say why with --reason")
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			p := lanes.ResumeParams{Channel: c.String("channel"), Kind: args[0], Key: args[1], RetryFailed: c.Bool("retry-failed"),
				RequestedBy: requester(), Reason: c.String("reason")}
			job, err := lanes.NewStore(pool, c.String("schema")).Resume(c.Context, p)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"kind": p.Kind, "key": p.Key, "failed_job_id": job, "retried": p.RetryFailed})
			}
			if p.RetryFailed {
				fmt.Fprintf(c.App.Writer, "lane %s of %s resumed: failed job %d runs again first\n", termsafe.String(p.Key), termsafe.String(p.Kind), job)
			} else {
				fmt.Fprintf(c.App.Writer, "lane %s of %s resumed past failed job %d\n", termsafe.String(p.Key), termsafe.String(p.Kind), job)
			}
			return nil
		},
	}
}
