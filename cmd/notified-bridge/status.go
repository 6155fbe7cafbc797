package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/termsafe"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the backlog, recent throughput, jobs per handler, failing handlers and running bridges",
		Flags: []cli.Flag{
			flagChannel(), flagJSON(),
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
				return printJSON(c.App.Writer, statusOutput{Status: st, Version: versionString()})
			}
			printStatus(c.App.Writer, st, versionString())
			return nil
		},
	}
}

// statusOutput is status's JSON: the pipeline's state, and the version of
// the notified-bridge that read it.
type statusOutput struct {
	*history.Status
	Version string `json:"version"`
}

// printStatus prints st as text; cliVersion is this notified-bridge's.
func printStatus(w io.Writer, st *history.Status, cliVersion string) {
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
	fmt.Fprintf(tw, "version\tnotified-bridge %s\n", termsafe.String(cliVersion))
	_ = tw.Flush()

	fmt.Fprintf(w, "\njobs per handler (live, and finished in the last %s)\n", window)
	if len(st.Handlers) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		states := []string{"pending", "available", "scheduled", "retryable", "running", "completed", "cancelled", "discarded"}
		fmt.Fprintln(tw, "HANDLER\t"+strings.ToUpper(strings.Join(states, "\t"))+"\tLAST ERROR")
		for _, h := range st.Handlers {
			name := termsafe.String(h.Handler)
			if h.Webhook != "" {
				// Webhook routes share their kind: each URL is a handler.
				name += " to " + termsafe.Shorten(termsafe.String(h.Webhook), 80)
			}
			fmt.Fprint(tw, name)
			for _, s := range states {
				fmt.Fprintf(tw, "\t%d", h.States[s])
			}
			lastErr := "-"
			if h.LastError != nil {
				lastErr = termsafe.Shorten(termsafe.String(termsafe.OneLine(*h.LastError)), 60)
				if h.LastErrorAt != nil {
					lastErr += " (" + fmtDur(st.At.Sub(*h.LastErrorAt)) + " ago)"
				}
			}
			fmt.Fprintf(tw, "\t%s\n", lastErr)
		}
		_ = tw.Flush()
	}

	if len(st.Lanes) > 0 {
		fmt.Fprintln(w, "\nlanes of ordered routes (pending jobs wait their turn in them)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HANDLER\tLANES\tSTOPPED\tJOBS WAITING")
		for _, l := range st.Lanes {
			stopped := strconv.FormatInt(l.Stopped, 10)
			if l.Stopped > 0 {
				stopped += ": see `notified-bridge lanes list --stopped`"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", termsafe.String(l.Kind), l.Lanes, stopped, l.Waiting)
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
