package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/replay"
)

func deadLettersCommand() *cli.Command {
	filterFlags := []cli.Flag{
		flagChannel(),
		&cli.StringSliceFlag{Name: "handler", Usage: "only jobs of this handler kind (repeatable)"},
		&cli.StringFlag{Name: "since", Usage: "only jobs finalized since `TIME`: RFC 3339, a date, or an age such as 24h"},
	}
	return &cli.Command{
		Name:  "dead-letters",
		Usage: "list jobs that ended discarded or cancelled and were not retried since; `dead-letters retry` re-runs them",
		Flags: append(slicesClone(filterFlags), flagJSON(),
			&cli.IntFlag{Name: "limit", Value: 100, Usage: "show at most this many jobs (0: all)"}),
		Action: listDeadLetters,
		Subcommands: []*cli.Command{{
			Name:      "retry",
			Usage:     "re-run dead letters as new jobs: the given JOB_IDs, or all that match --handler/--since (with --all)",
			ArgsUsage: "[JOB_ID...]",
			Flags: append(slicesClone(filterFlags), flagJSON(), flagTable(), flagIDField(), flagNameField(),
				&cli.BoolFlag{Name: "all", Usage: "retry every dead letter that matches --handler and --since"},
				&cli.StringFlag{Name: "reason", Usage: "why, recorded with the replay (required unless --dry-run)"},
				&cli.BoolFlag{Name: "dry-run", Usage: "show what would be enqueued and change nothing"},
			),
			Action: retryDeadLetters,
		}},
	}
}

func listDeadLetters(c *cli.Context) error {
	if c.Args().Present() {
		arg := c.Args().First()
		return unexpectedArgument(c, arg, fmt.Sprintf("did you mean `dead-letters retry %s`?", arg))
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
	printDeadLetters(c, dead, limit, more)
	return nil
}

// printDeadLetters prints dead letters for people, the newest limit of them
// when there are more.
func printDeadLetters(c *cli.Context, dead []history.Job, limit int, more bool) {
	if len(dead) == 0 {
		fmt.Fprintln(c.App.Writer, "no dead letters")
		return
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
	fmt.Fprintln(c.App.Writer, "\nre-run them with `notified-bridge dead-letters retry --reason ... [JOB_ID...]`")
}

func retryDeadLetters(c *cli.Context) error {
	f, err := deadLetterFilter(c)
	if err != nil {
		return err
	}
	for _, a := range c.Args().Slice() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil && len(a) > 1 && a[0] == '-' {
			return unexpectedArgument(c, a, "")
		}
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
	found := map[int64]bool{}
	for _, j := range dead {
		found[j.ID] = true
	}
	for _, id := range f.JobIDs {
		if !found[id] {
			return fmt.Errorf("dead-letters retry: job %d is not a dead letter of channel %q (not found, not discarded or cancelled, or retried since): see `notified-bridge dead-letters`", id, c.String("channel"))
		}
	}
	if len(dead) == 0 {
		fmt.Fprintln(c.App.Writer, "no dead letters to retry")
		return nil
	}
	sel := replay.Selector{}
	for _, j := range dead {
		sel.Jobs = append(sel.Jobs, j.ID)
	}
	return runReplay(c, pool, sel, nil)
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
