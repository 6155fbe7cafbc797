package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/termsafe"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "dispatch recorded events again, as new jobs for today's routes, selected by id, range, name, time or outcome",
		Description: "Selectors combine (an event must match all that are given); at least one is required.\n" +
			"Examples:\n" +
			"  notified-bridge replay --id 42 --reason 'fixed the mailer'\n" +
			"  notified-bridge replay --from-id 1000 --to-id 1999 --handler send_email --reason 'bug #12'\n" +
			"  notified-bridge replay --name user_signed_up --since 2026-11-26 --until 2026-11-27 --reason 'template fix'\n" +
			"  notified-bridge replay --outcome unrouted --name order_paid --reason 'route added' --dry-run\n" +
			"  notified-bridge replay --handler send_email --job-state discarded --reason 'SMTP was down'",
		Flags: []cli.Flag{
			flagChannel, flagTable, flagIDField, flagNameField, flagJSON,
			&cli.StringSliceFlag{Name: "id", Usage: "an event id (repeatable)"},
			&cli.StringFlag{Name: "from-id", Usage: "lowest event id of a range, inclusive"},
			&cli.StringFlag{Name: "to-id", Usage: "highest event id of a range, inclusive"},
			&cli.StringSliceFlag{Name: "name", Usage: "an event name (repeatable)"},
			&cli.StringFlag{Name: "since", Usage: "events dispatched at or after `TIME`: RFC 3339, a date, or an age such as 24h"},
			&cli.StringFlag{Name: "until", Usage: "events dispatched before `TIME`"},
			&cli.StringSliceFlag{Name: "outcome", Usage: "outcome at dispatch: dispatched, unrouted, missing or rejected (repeatable)"},
			&cli.StringSliceFlag{Name: "job-state", Usage: "events whose newest job (of --handler, if given) is in this state, e.g. discarded (repeatable)"},
			&cli.StringSliceFlag{Name: "handler", Usage: "enqueue jobs only for this handler kind (repeatable)"},
			&cli.StringFlag{Name: "reason", Usage: "why, recorded with the replay (required unless --dry-run)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "show what would be enqueued and change nothing"},
			&cli.IntFlag{Name: "batch-size", Value: bridge.DefaultBatchSize, Usage: "events per transaction"},
		},
		Action: func(c *cli.Context) error {
			args, err := arguments(c)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				return fmt.Errorf("replay: unexpected argument %q: select events with --id %s", args[0], args[0])
			}
			sel := bridge.ReplaySelector{
				IDs: c.StringSlice("id"), FromID: c.String("from-id"), ToID: c.String("to-id"),
				Names: c.StringSlice("name"), Outcomes: c.StringSlice("outcome"), JobStates: c.StringSlice("job-state"),
			}
			now := time.Now()
			for _, b := range []struct {
				flag string
				dst  *time.Time
			}{{"since", &sel.Since}, {"until", &sel.Until}} {
				if s := c.String(b.flag); s != "" {
					t, err := parseTime(s, now)
					if err != nil {
						return fmt.Errorf("--%s: %w", b.flag, err)
					}
					*b.dst = t
				}
			}
			if c.Int("batch-size") < 1 || c.Int("batch-size") > 10000 {
				return fmt.Errorf("--batch-size %d is out of range: use 1 to 10000", c.Int("batch-size"))
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			return runReplay(c, pool, sel, c.StringSlice("handler"))
		},
	}
}

// runReplay replays and prints the outcome; flags reason, dry-run, json
// and the events table's are read from c.
func runReplay(c *cli.Context, pool *pgxpool.Pool, sel bridge.ReplaySelector, handlers []string) error {
	if handlers == nil {
		handlers = c.StringSlice("handler")
		if len(sel.Jobs) > 0 {
			handlers = nil // dead letters name their handlers
		}
	}
	opts := bridge.ReplayOptions{
		Handlers: handlers, DryRun: c.Bool("dry-run"), Reason: c.String("reason"), RequestedBy: requester(),
		BatchSize: c.Int("batch-size"), PlanLimit: 0,
	}
	if !c.Bool("json") {
		opts.PlanLimit = 20 // the table shows the first ones; JSON lists all
	}
	progress := newProgress(c.App.ErrWriter)
	opts.Progress = progress.update
	res, err := bridge.Replay(c.Context, pool, tableConfig(c), sel, opts)
	progress.done()
	if err != nil {
		if res != nil && res.ReplayID != 0 {
			return fmt.Errorf("replay %d stopped after %d events and %d jobs (committed; finished_at stays empty): %w",
				res.ReplayID, res.Events, res.Jobs, err)
		}
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	verb := "enqueued"
	if res.DryRun {
		verb = "would enqueue"
		fmt.Fprintln(w, "dry run: nothing was changed")
	} else {
		fmt.Fprintf(w, "replay %d recorded\n", res.ReplayID)
	}
	fmt.Fprintf(w, "%s selected: %s %s for %s, %d skipped (%s)\n",
		plural(res.Selected, "event"), verb, plural(res.Jobs, "job"), plural(res.Events, "event"), res.SkippedCount,
		fmtDur(time.Duration(res.Took*float64(time.Second))))
	if len(res.Planned) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EVENT\tNAME\tHANDLERS")
		for _, p := range res.Planned {
			handlers := make([]string, len(p.Handlers))
			for i, h := range p.Handlers {
				handlers[i] = termsafe.String(h)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", shorten(termsafe.String(p.EventID), 40), termsafe.String(p.EventName), strings.Join(handlers, ", "))
		}
		_ = tw.Flush()
		if res.Events > len(res.Planned) {
			fmt.Fprintf(w, "... and %d more (--json lists all)\n", res.Events-len(res.Planned))
		}
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintln(w, "\nskipped:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range res.Skipped {
			fmt.Fprintf(tw, "  %s\t%s\n", shorten(termsafe.String(s.EventID), 40), termsafe.String(s.Reason))
		}
		_ = tw.Flush()
		if res.SkippedCount > len(res.Skipped) {
			fmt.Fprintf(w, "... and %d more (--json lists all)\n", res.SkippedCount-len(res.Skipped))
		}
	}
	return nil
}

// requester names who runs the command, for the replay's record.
func requester() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		name += "@" + host
	}
	return name
}

// progress shows a replay's progress on a terminal, on one line rewritten
// at most a few times a second; elsewhere it shows nothing.
type progress struct {
	w     io.Writer
	on    bool
	last  time.Time
	start time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: isTerminal(w), start: time.Now()}
}

func (p *progress) update(r bridge.ReplayProgress) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond && r.Done < r.Selected {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if r.Selected > 0 {
		pct = 100 * float64(r.Done) / float64(r.Selected)
	}
	rate := float64(r.Done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\rreplaying: %d/%d events (%.0f%%), %d jobs, %d skipped, %.0f events/s   ", r.Done, r.Selected, pct, r.Jobs, r.Skipped, rate)
	p.shown = true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
