package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/logging"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/replay"
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
			"  notified-bridge replay --handler send_email --job-state discarded --reason 'SMTP was down'\n" +
			"  notified-bridge replay --id 42 --ignore-filters --reason 'alert for this order too'",
		Flags: []cli.Flag{
			flagChannel(), flagTable(), flagIDField(), flagNameField(), flagJSON(),
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
			&cli.BoolFlag{Name: "ignore-filters", Usage: "enqueue a job for every route, whatever the routes' filters (--where) say of the row (default: apply today's filters)"},
			&cli.IntFlag{Name: "batch-size", Value: bridge.DefaultBatchSize, Usage: "events per transaction"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				arg := c.Args().First()
				return unexpectedArgument(c, arg, "select events with --id "+arg)
			}
			sel := replay.Selector{
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
func runReplay(c *cli.Context, pool *pgxpool.Pool, sel replay.Selector, handlers []string) error {
	if handlers == nil {
		handlers = c.StringSlice("handler")
		if len(sel.Jobs) > 0 {
			handlers = nil // dead letters name their handlers
		}
	}
	opts := replay.Options{
		Handlers: handlers, DryRun: c.Bool("dry-run"), Reason: c.String("reason"), RequestedBy: requester(),
		BatchSize: c.Int("batch-size"), PlanLimit: 0, IgnoreFilters: c.Bool("ignore-filters"),
	}
	if !c.Bool("json") {
		opts.PlanLimit = 20 // the table shows the first ones; JSON lists all
	}
	progress := newProgress(c.App.ErrWriter)
	opts.Progress = progress.update
	cfg := tableConfig(c)
	res, err := replay.Run(c.Context, pool, cfg, sel, opts)
	progress.done()
	if err != nil {
		if res != nil && res.ReplayID != 0 {
			return fmt.Errorf("replay %d stopped after %d events and %d jobs (committed; finished_at stays empty): %w",
				res.ReplayID, res.Events, res.Jobs, err)
		}
		if errors.Is(err, replay.ErrNothingToReplay) && res != nil {
			// Every event was skipped: show which and why, then fail.
			if perr := printReplay(c, cfg, res); perr != nil {
				return perr
			}
		}
		return replayError(err, cfg, sel, handlers, opts.DryRun)
	}
	return printReplay(c, cfg, res)
}

// printReplay prints what a replay did, as JSON with --json.
func printReplay(c *cli.Context, cfg bridge.Config, res *replay.Result) error {
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	verb := "enqueued"
	switch {
	case res.DryRun:
		verb = "would enqueue"
		fmt.Fprintln(w, "dry run: nothing was changed")
	case res.ReplayID != 0:
		fmt.Fprintf(w, "replay %d recorded\n", res.ReplayID)
	default:
		fmt.Fprintln(w, "nothing was recorded")
	}
	fmt.Fprintf(w, "%s selected: %s %s for %s, %d skipped (%s)\n",
		plural(res.Selected, "event"), verb, plural(res.Jobs, "job"), plural(res.Events, "event"), res.SkippedCount,
		fmtDur(time.Duration(res.Took*float64(time.Second))))
	if len(res.JobsByHandler) > 0 {
		var parts []string
		for _, h := range slices.Sorted(maps.Keys(res.JobsByHandler)) {
			parts = append(parts, fmt.Sprintf("%s %d", termsafe.String(h), res.JobsByHandler[h]))
		}
		fmt.Fprintf(w, "jobs by handler: %s\n", strings.Join(parts, ", "))
	}
	if len(res.SkippedByCause) > 0 {
		fmt.Fprintf(w, "skipped: %s\n", skipCauses(res.SkippedByCause, cfg.Table))
	}
	if res.FilteredJobs > 0 {
		fmt.Fprintf(w, "route filters skipped %s of the events enqueued for (--ignore-filters makes them)\n", plural(res.FilteredJobs, "job"))
	}
	if !res.FiltersApplied && c.Bool("ignore-filters") {
		fmt.Fprintln(w, "route filters ignored (--ignore-filters): every route got its job")
	}
	if len(res.Planned) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EVENT\tNAME\tHANDLERS")
		for _, p := range res.Planned {
			handlers := make([]string, len(p.Handlers))
			for i, h := range p.Handlers {
				handlers[i] = termsafe.String(h)
			}
			for _, h := range p.Filtered {
				handlers = append(handlers, termsafe.String(h)+" (skipped by filter)")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", termsafe.Shorten(termsafe.String(p.EventID), 40), termsafe.String(p.EventName), strings.Join(handlers, ", "))
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
			fmt.Fprintf(tw, "  %s\t%s\n", termsafe.Shorten(termsafe.String(s.EventID), 40), termsafe.String(s.Reason))
		}
		_ = tw.Flush()
		if res.SkippedCount > len(res.Skipped) {
			fmt.Fprintf(w, "... and %d more (--json lists all)\n", res.SkippedCount-len(res.Skipped))
		}
	}
	return nil
}

// selectorFlags are the flags of ReplaySelector's fields.
var selectorFlags = map[string]string{"IDs": "--id", "FromID": "--from-id", "ToID": "--to-id"}

// replayError says a replay's error in the command line's terms: flags
// rather than Go fields, and what to check.
func replayError(err error, cfg bridge.Config, sel replay.Selector, handlers []string, dryRun bool) error {
	recorded := "; nothing was recorded"
	if dryRun {
		recorded = ""
	}
	var (
		selErr  *replay.SelectorError
		unknown *replay.UnknownHandlerError
		nothing *replay.NothingToReplayError
	)
	switch {
	case errors.Is(err, replay.ErrNoReason):
		return errors.New("a replay needs a reason, for the record: say why with --reason")
	case errors.As(err, &selErr) && selectorFlags[selErr.Field] != "":
		return fmt.Errorf("replay %s: %w", selectorFlags[selErr.Field], selErr.Err)
	case errors.As(err, &unknown) && unknown.Selected == 0:
		return fmt.Errorf("nothing to replay: --handler %s: no route has this handler%s: check its spelling against `notified-bridge routes list`",
			unknown.Handler, recorded)
	case errors.As(err, &unknown):
		return fmt.Errorf("nothing to replay for --handler %s: no route sends the names of the %s selected (%s) to it%s: "+
			"check the routes with `notified-bridge routes list`, and the selectors: %s",
			unknown.Handler, plural(unknown.Selected, "event"), strings.Join(shortList(unknown.Names, 5), ", "), recorded,
			describeSelection(sel, handlers))
	case errors.As(err, &nothing) && nothing.Selected == 0:
		return fmt.Errorf("nothing to replay: no event recorded on channel %q matches %s%s: "+
			"replay selects only events the bridge has recorded (`notified-bridge history ID` shows one), "+
			"matching every selector given; check them, and --channel",
			nothing.Channel, describeSelection(sel, handlers), recorded)
	case errors.As(err, &nothing):
		all := "all " + plural(nothing.Selected, "selected event") + " were skipped"
		if nothing.Selected == 1 {
			all = "the selected event was skipped"
		}
		return fmt.Errorf("nothing to replay: %s (%s)%s: see why for each event in the output",
			all, skipCauses(nothing.Skipped, cfg.Table), recorded)
	}
	return err
}

// skipCauses says how many events were skipped for each cause.
func skipCauses(byCause map[replay.SkipCause]int, table string) string {
	words := map[replay.SkipCause]string{
		replay.SkipInvalidID: "not a valid id",
		replay.SkipNoRow:     "no row in " + termsafe.String(table),
		replay.SkipNullName:  "name is NULL",
		replay.SkipNoRoute:   "no route for the name",
		replay.SkipFiltered:  "skipped by the routes' filters (--ignore-filters makes their jobs)",
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(byCause)) {
		w := words[c]
		if w == "" {
			w = string(c)
		}
		parts = append(parts, fmt.Sprintf("%d %s", byCause[c], w))
	}
	return strings.Join(parts, ", ")
}

// describeSelection spells the selector as the flags that set it.
func describeSelection(sel replay.Selector, handlers []string) string {
	var parts []string
	add := func(flag string, values []string) {
		for i, v := range values {
			if i == 5 {
				parts = append(parts, fmt.Sprintf("(and %d more %s)", len(values)-i, flag))
				break
			}
			parts = append(parts, flag+" "+termsafe.Shorten(v, 40))
		}
	}
	add("--id", sel.IDs)
	add("--from-id", nonEmpty(sel.FromID))
	add("--to-id", nonEmpty(sel.ToID))
	add("--name", sel.Names)
	if !sel.Since.IsZero() {
		add("--since", []string{sel.Since.Format(time.RFC3339)})
	}
	if !sel.Until.IsZero() {
		add("--until", []string{sel.Until.Format(time.RFC3339)})
	}
	add("--outcome", sel.Outcomes)
	add("--job-state", sel.JobStates)
	if len(sel.JobStates) > 0 {
		add("--handler", handlers)
	}
	if len(sel.Jobs) > 0 {
		jobs := make([]string, len(sel.Jobs))
		for i, j := range sel.Jobs {
			jobs[i] = strconv.FormatInt(j, 10)
		}
		parts = append(parts, "jobs "+strings.Join(shortList(jobs, 5), ", "))
	}
	return strings.Join(parts, " ")
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// shortList is the first n values, then "..." when there are more.
func shortList(values []string, n int) []string {
	if len(values) <= n {
		return values
	}
	return append(slices.Clip(values[:n]), "...")
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
	return &progress{w: w, on: logging.IsTerminal(w), start: time.Now()}
}

func (p *progress) update(r replay.Progress) {
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
