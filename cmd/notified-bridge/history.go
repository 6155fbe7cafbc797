package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/termsafe"
)

// tableConfig is the events table part of the bridge's configuration, from
// the flags shared with run.
func tableConfig(c *cli.Context) bridge.Config {
	return bridge.Config{
		Schema: c.String("schema"), Table: c.String("table"), IDColumn: c.String("id-field"),
		NameColumn: c.String("name-field"), Channel: c.String("channel"),
	}
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "show what became of an event: its outcome, its row, and every handler's job",
		ArgsUsage: "EVENT_ID",
		Flags:     []cli.Flag{flagChannel, flagTable, flagIDField, flagNameField, flagJSON},
		Action: func(c *cli.Context) error {
			args, err := positional(c, 1, "history takes one argument, the event id, e.g. history 42")
			if err != nil {
				return err
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			cfg := tableConfig(c)
			id := args[0]
			// The bridge records ids in their canonical text (042 is 42);
			// when the events table can be read, look the event up that way
			// and show its row too.
			row, lookupErr := bridge.LookupEvent(c.Context, pool, cfg, id)
			if lookupErr == nil {
				id = row.ID
			}
			ev, err := history.NewStore(pool, c.String("schema")).Event(c.Context, c.String("channel"), id)
			if err != nil {
				return err
			}
			if row != nil && row.Found {
				ev.Data = row.Data
				if ev.Name == nil { // not dispatched yet: the row knows
					ev.Name = row.Name
				}
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, ev)
			}
			printEvent(c.App.Writer, ev, row, lookupErr)
			return nil
		},
	}
}

// printEvent prints an event's history for people. Everything that came
// from the database goes through termsafe: producers choose event names and
// ids, workers write job errors and outputs.
func printEvent(w io.Writer, ev *history.Event, row *bridge.EventRow, lookupErr error) {
	name := "(no name)"
	if ev.Name != nil {
		name = termsafe.String(*ev.Name)
	}
	fmt.Fprintf(w, "event %s on channel %q: %s\n\n", termsafe.String(ev.ID), ev.Channel, name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "outcome\t%s\n", termsafe.String(ev.Outcome))
	if ev.Reason != nil {
		fmt.Fprintf(tw, "reason\t%s\n", termsafe.String(*ev.Reason))
	}
	fmt.Fprintf(tw, "notified\t%s\n", fmtTime(ev.NotifiedAt))
	if ev.DispatchedAt != nil {
		fmt.Fprintf(tw, "dispatched\t%s (%s after the notification)\n", fmtTime(*ev.DispatchedAt), fmtDur(ev.DispatchedAt.Sub(ev.NotifiedAt)))
	}
	if len(ev.Routes) > 0 {
		kinds := make([]string, len(ev.Routes))
		for i, r := range ev.Routes {
			kinds[i] = termsafe.String(r.Handler)
		}
		fmt.Fprintf(tw, "routed to\t%s\n", strings.Join(kinds, ", "))
	}
	switch {
	case lookupErr != nil:
		fmt.Fprintf(tw, "row\tnot read: %s\n", termsafe.String(oneLine(lookupErr)))
	case row != nil && row.Found:
		// JSON escapes C0 controls but not C1 or bidi controls.
		fmt.Fprintf(tw, "row\t%s\n", shorten(termsafe.String(string(row.Data)), 200))
	case row != nil:
		fmt.Fprintf(tw, "row\tno longer in the events table\n")
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(ev.Jobs) == 0 {
		switch ev.Outcome {
		case history.OutcomeDispatched:
			fmt.Fprintln(w, "no jobs: they were deleted before their outcome was recorded, or pruned")
		case history.OutcomePending:
		default:
			fmt.Fprintln(w, "no jobs: replay it once it can be handled, e.g. `notified-bridge replay --id "+termsafe.String(ev.ID)+" --reason ...`")
		}
		return
	}
	printJobs(w, ev.Jobs, false)
}

// printJobs prints jobs as a table; withEvent adds the event's id and name.
// Text from the database goes through termsafe, which also keeps tabs and
// newlines from breaking the table.
func printJobs(w io.Writer, js []history.Job, withEvent bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "JOB\tHANDLER\tSTATE\tATTEMPT\tCREATED\tFINALIZED\tREPLAY\tERROR / OUTPUT"
	if withEvent {
		head = "JOB\tEVENT\tNAME\tHANDLER\tSTATE\tATTEMPT\tFINALIZED\tERROR"
	}
	fmt.Fprintln(tw, head)
	for _, j := range js {
		finalized := "-"
		if j.FinalizedAt != nil {
			finalized = fmtTime(*j.FinalizedAt)
		}
		detail := "-"
		if j.LastError != nil {
			detail = shorten(termsafe.String(oneLineText(*j.LastError)), 80)
		}
		handler, state := termsafe.String(j.Handler), termsafe.String(j.State)
		if withEvent {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, shorten(termsafe.String(j.EventID), 40),
				termsafe.String(j.EventName), handler, state, j.Attempt, j.MaxAttempts, finalized, detail)
			continue
		}
		if j.State == history.StateCompleted && len(j.Output) > 0 {
			detail = shorten(termsafe.String(string(j.Output)), 80)
		}
		replay := "-"
		if j.ReplayID != nil {
			replay = "#" + strconv.FormatInt(*j.ReplayID, 10)
			if j.ReplayReason != nil {
				replay += " " + shorten(termsafe.String(*j.ReplayReason), 30)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", j.ID, handler, state, j.Attempt, j.MaxAttempts,
			fmtTime(j.CreatedAt), finalized, replay, detail)
	}
	_ = tw.Flush()
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the backlog, recent throughput, jobs per handler, failing handlers and running bridges",
		Flags: []cli.Flag{
			flagChannel, flagJSON,
			&cli.DurationFlag{Name: "window", Value: 24 * time.Hour, Usage: "how far back to count finished jobs"},
		},
		Action: func(c *cli.Context) error {
			if c.Duration("window") <= 0 {
				return fmt.Errorf("--window %s must be positive", c.Duration("window"))
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			st, err := history.NewStore(pool, c.String("schema")).Status(c.Context, c.String("channel"), c.Duration("window"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, st)
			}
			printStatus(c.App.Writer, st)
			return nil
		},
	}
}

func printStatus(w io.Writer, st *history.Status) {
	window := fmtDur(time.Duration(st.Window * float64(time.Second)))
	fmt.Fprintf(w, "channel %q at %s\n\n", st.Channel, fmtTime(st.At))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	backlog := fmt.Sprintf("%d events not dispatched yet", st.Backlog)
	if st.OldestPendingAge != nil {
		backlog += fmt.Sprintf(", oldest waiting %s", fmtDur(time.Duration(*st.OldestPendingAge*float64(time.Second))))
	}
	fmt.Fprintf(tw, "backlog\t%s\n", backlog)
	fmt.Fprintf(tw, "last minute\t%s\n", fmtOutcomes(st.LastMinute))
	fmt.Fprintf(tw, "last hour\t%s\n", fmtOutcomes(st.LastHour))
	dead := fmt.Sprintf("%d", st.DeadLetters)
	if st.DeadLetters > 0 {
		dead += ": see `notified-bridge dead-letters`"
	}
	fmt.Fprintf(tw, "dead letters (%s)\t%s\n", window, dead)
	_ = tw.Flush()

	fmt.Fprintf(w, "\njobs per handler (live, and finished in the last %s)\n", window)
	if len(st.Handlers) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		states := []string{"available", "scheduled", "retryable", "running", "completed", "cancelled", "discarded"}
		fmt.Fprintln(tw, "HANDLER\t"+strings.ToUpper(strings.Join(states, "\t"))+"\tLAST ERROR")
		for _, h := range st.Handlers {
			fmt.Fprint(tw, termsafe.String(h.Handler))
			for _, s := range states {
				fmt.Fprintf(tw, "\t%d", h.States[s]+extraState(h.States, s))
			}
			lastErr := "-"
			if h.LastError != nil {
				lastErr = shorten(termsafe.String(oneLineText(*h.LastError)), 60)
				if h.LastErrorAt != nil {
					lastErr += " (" + fmtDur(st.At.Sub(*h.LastErrorAt)) + " ago)"
				}
			}
			fmt.Fprintf(tw, "\t%s\n", lastErr)
		}
		_ = tw.Flush()
	}

	fmt.Fprintln(w, "\nbridges")
	if len(st.Bridges) == 0 {
		fmt.Fprintln(w, "  none running: start one with `notified-bridge run`")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tPID\tVERSION\tRUNNING SINCE\tLAST SEEN\tSTATE")
	for _, b := range st.Bridges {
		state := "running"
		if !b.Alive {
			state = "not seen lately (stopped or unreachable)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s ago\t%s\n", termsafe.String(b.ID), termsafe.String(b.Host), b.PID,
			termsafe.String(b.Version), fmtTime(b.StartedAt), fmtDur(st.At.Sub(b.SeenAt)), state)
	}
	_ = tw.Flush()
}

// extraState folds River's rarer states into the shown columns: pending
// into available.
func extraState(states map[string]int64, s string) int64 {
	if s == "available" {
		return states["pending"]
	}
	return 0
}

func fmtOutcomes(m map[string]int64) string {
	if len(m) == 0 {
		return "no events"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], termsafe.String(k))
	}
	return strings.Join(parts, ", ")
}

func deadLettersCommand() *cli.Command {
	filterFlags := []cli.Flag{
		flagChannel,
		&cli.StringSliceFlag{Name: "handler", Usage: "only jobs of this handler kind (repeatable)"},
		&cli.StringFlag{Name: "since", Usage: "only jobs finalized since `TIME`: RFC 3339, a date, or an age such as 24h"},
	}
	return &cli.Command{
		Name:  "dead-letters",
		Usage: "list jobs that ended discarded or cancelled and were not retried since; `dead-letters retry` re-runs them",
		Flags: append(slicesClone(filterFlags), flagJSON,
			&cli.IntFlag{Name: "limit", Value: 100, Usage: "show at most this many jobs (0: all)"}),
		Action: func(c *cli.Context) error {
			args, err := arguments(c)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				return fmt.Errorf("dead-letters: unexpected argument %q: did you mean `dead-letters retry %s`?", args[0], args[0])
			}
			f, err := deadLetterFilter(c)
			if err != nil {
				return err
			}
			if c.Int("limit") < 0 {
				return fmt.Errorf("--limit %d must be 0 (all) or more", c.Int("limit"))
			}
			// One more than shown tells whether there are more.
			limit := c.Int("limit")
			if limit > 0 {
				f.Limit = limit + 1
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			dead, err := history.NewStore(pool, c.String("schema")).DeadLetters(c.Context, f)
			if err != nil {
				return err
			}
			more := limit > 0 && len(dead) > limit
			if more {
				dead = dead[:limit]
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, dead)
			}
			if len(dead) == 0 {
				fmt.Fprintln(c.App.Writer, "no dead letters")
				return nil
			}
			perHandler := map[string]int{}
			for _, j := range dead {
				perHandler[j.Handler]++
			}
			kinds := make([]string, 0, len(perHandler))
			for k := range perHandler {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			parts := make([]string, len(kinds))
			for i, k := range kinds {
				parts[i] = fmt.Sprintf("%s %d", termsafe.String(k), perHandler[k])
			}
			shown := plural(len(dead), "dead letter")
			if more {
				shown = fmt.Sprintf("more than %d dead letters, the newest %d shown", limit, limit)
			}
			fmt.Fprintf(c.App.Writer, "%s (%s)\n\n", shown, strings.Join(parts, ", "))
			printJobs(c.App.Writer, dead, true)
			if more {
				fmt.Fprintf(c.App.Writer, "\nshowing the newest %d: use --limit 0 for all\n", limit)
			}
			fmt.Fprintln(c.App.Writer, "\nre-run them with `notified-bridge dead-letters retry [JOB_ID...] --reason ...`")
			return nil
		},
		Subcommands: []*cli.Command{{
			Name:      "retry",
			Usage:     "re-run dead letters as new jobs: the given JOB_IDs, or all that match --handler/--since (with --all)",
			ArgsUsage: "[JOB_ID...]",
			Flags: append(slicesClone(filterFlags), flagJSON, flagTable, flagIDField, flagNameField,
				&cli.BoolFlag{Name: "all", Usage: "retry every dead letter that matches --handler and --since"},
				&cli.StringFlag{Name: "reason", Usage: "why, recorded with the replay (required unless --dry-run)"},
				&cli.BoolFlag{Name: "dry-run", Usage: "show what would be enqueued and change nothing"},
			),
			Action: func(c *cli.Context) error {
				args, err := arguments(c)
				if err != nil {
					return err
				}
				f, err := deadLetterFilter(c)
				if err != nil {
					return err
				}
				for _, a := range args {
					id, err := strconv.ParseInt(a, 10, 64)
					if err != nil || id <= 0 {
						return fmt.Errorf("dead-letters retry: %q is not a job id: give job ids as listed by `notified-bridge dead-letters`", a)
					}
					f.JobIDs = append(f.JobIDs, id)
				}
				if len(f.JobIDs) == 0 && !c.Bool("all") {
					return errors.New("dead-letters retry: give the job ids to retry, or --all (with --handler/--since to narrow it)")
				}
				pool, err := connectMigrated(c)
				if err != nil {
					return err
				}
				defer pool.Close()
				dead, err := history.NewStore(pool, c.String("schema")).DeadLetters(c.Context, f)
				if err != nil {
					return err
				}
				if len(f.JobIDs) > 0 {
					found := map[int64]bool{}
					for _, j := range dead {
						found[j.ID] = true
					}
					for _, id := range f.JobIDs {
						if !found[id] {
							return fmt.Errorf("dead-letters retry: job %d is not a dead letter of channel %q (not found, not discarded or cancelled, or retried since): see `notified-bridge dead-letters`", id, c.String("channel"))
						}
					}
				}
				if len(dead) == 0 {
					fmt.Fprintln(c.App.Writer, "no dead letters to retry")
					return nil
				}
				sel := bridge.ReplaySelector{}
				for _, j := range dead {
					sel.Jobs = append(sel.Jobs, j.ID)
				}
				return runReplay(c, pool, sel, nil)
			},
		}},
	}
}

func deadLetterFilter(c *cli.Context) (history.DeadLetterFilter, error) {
	f := history.DeadLetterFilter{Channel: c.String("channel"), Handlers: c.StringSlice("handler")}
	if s := c.String("since"); s != "" {
		t, err := parseTime(s, time.Now())
		if err != nil {
			return f, fmt.Errorf("--since: %w", err)
		}
		f.Since = t
	}
	return f, nil
}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete history older than --retention now (running bridges also prune every hour)",
		Flags: []cli.Flag{flagRetention, flagJSON},
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

// parseTime reads a point in time: RFC 3339, "2006-01-02 15:04[:05]",
// "2006-01-02" (local time), or an age such as 24h or 90m (now minus it).
func parseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("age %q is negative: use e.g. 24h for a day ago", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-11-27T10:00:00Z), a date (2026-11-27), or an age (24h)", s)
}

func fmtTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

// fmtDur rounds a duration for people.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		out := d.Round(time.Second).String()
		out = strings.TrimSuffix(out, "0s")
		return strings.TrimSuffix(out, "0m")
	}
}

func shorten(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// plural is "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func oneLineText(s string) string { return strings.Join(strings.Fields(s), " ") }

func slicesClone(fs []cli.Flag) []cli.Flag { return append([]cli.Flag(nil), fs...) }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
