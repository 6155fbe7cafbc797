package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/history"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/lanes"
)

// tableConfig is the events table part of the bridge's configuration, from
// the flags shared with run.
func eventsTable(c *cli.Context) history.EventsTable {
	return history.EventsTable{Table: c.String("table"), IDColumn: c.String("id-field"), NameColumn: c.String("name-field")}
}

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
		Flags:     []cli.Flag{flagChannel(), flagTable(), flagIDField(), flagNameField(), flagJSON()},
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
			v, err := history.NewStore(pool, c.String("schema")).View(c.Context, eventsTable(c), c.String("channel"), args[0])
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, v.Event)
			}
			printEvent(c.App.Writer, v)
			return nil
		},
	}
}

// printEvent prints an event's history for people. Everything that came
// from the database goes through termsafe: producers choose event names and
// ids, workers write job errors and outputs.
func printEvent(w io.Writer, v *history.EventView) {
	ev := v.Event
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
			if skip := r.SkipText(); skip != "" {
				kinds[i] += " (" + termsafe.String(skip) + ")"
			}
			if r.Webhook != "" {
				kinds[i] = "webhook " + termsafe.String(r.Webhook)
			}
			if r.OrderedBy != "" {
				kinds[i] += " (ordered by " + termsafe.String(r.OrderedBy) + ")"
			}
		}
		fmt.Fprintf(tw, "routed to\t%s\n", strings.Join(kinds, ", "))
	}
	switch {
	case v.RowErr != nil:
		fmt.Fprintf(tw, "current row\tnot read: %s\n", termsafe.String(termsafe.OneLine(v.RowErr.Error())))
	case v.RowFound:
		// JSON escapes C0 controls but not C1 or bidi controls.
		fmt.Fprintf(tw, "current row\t%s\n", termsafe.Shorten(termsafe.String(string(ev.Data)), 200))
	default:
		fmt.Fprintf(tw, "current row\tno longer in the events table\n")
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if len(ev.Jobs) == 0 {
		switch ev.Outcome {
		case history.OutcomeDispatched:
			if allSkipped(ev.Routes) {
				fmt.Fprintln(w, "no jobs: the filter of every route skipped the event; `notified-bridge replay --id "+termsafe.String(ev.ID)+" --ignore-filters --reason ...` makes them")
				return
			}
			fmt.Fprintln(w, "no jobs: they were deleted before their outcome was recorded, or pruned")
		case history.OutcomePending:
		default:
			fmt.Fprintln(w, "no jobs: replay it once it can be handled, e.g. `notified-bridge replay --id "+termsafe.String(ev.ID)+" --reason ...`")
		}
		return
	}
	printJobs(w, ev.Jobs, false)
	printLanes(w, ev.Jobs)
	printJobData(w, ev)
}

// printLanes says, for the jobs of ordered routes, which lane each is in,
// what a waiting job waits for, and what its lane did at its failure.
func printLanes(w io.Writer, js []history.Job) {
	var lines []string
	for _, j := range js {
		if j.Lane == "" {
			continue
		}
		line := fmt.Sprintf("  job %d	lane %s of %s", j.ID, termsafe.String(j.Lane), termsafe.String(j.Handler))
		switch {
		case j.LaneStoppedAt != nil:
			line += fmt.Sprintf(": waits; the lane is stopped at failed job %d (resume it: `notified-bridge lanes resume --reason ... %s %s`)",
				*j.LaneStoppedAt, termsafe.String(j.Handler), shellQuote(termsafe.String(j.Lane)))
		case j.WaitingBehind != nil:
			line += fmt.Sprintf(": waits for job %d", *j.WaitingBehind)
		}
		for _, e := range j.LaneEvents {
			switch e.Action {
			case lanes.ActionContinued:
				next := "no job was waiting"
				if e.NextJobID != nil {
					next = fmt.Sprintf("job %d ran next", *e.NextJobID)
				}
				line += fmt.Sprintf("; the lane went on past this %s job (%s)", termsafe.String(e.JobState), next)
			case lanes.ActionStopped:
				line += fmt.Sprintf("; the lane stopped at this %s job at %s", termsafe.String(e.JobState), fmtTime(e.At))
			case lanes.ActionResumed:
				line += fmt.Sprintf("; resumed by %s at %s: %s", termsafe.String(e.Actor), fmtTime(e.At), termsafe.String(e.Reason))
			}
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nordered jobs (one lane per handler and key, run one at a time in commit order):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	_ = tw.Flush()
}

// allSkipped reports whether rs has routes and the filter of each skipped
// the event.
func allSkipped(rs []history.Route) bool {
	for _, r := range rs {
		if r.Skipped == "" {
			return false
		}
	}
	return len(rs) > 0
}

// printJobData prints the event's row as each job's handler received it,
// for the jobs River still has; the row may have changed since (the current
// row above).
func printJobData(w io.Writer, ev *history.Event) {
	fmt.Fprintln(w, "\ndata the handlers received (kept while River keeps the job):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, j := range ev.Jobs {
		var data string
		switch {
		case j.Data == nil:
			data = "not kept: River deleted the job"
		case ev.Data != nil && sameJSON(j.Data, ev.Data):
			data = "the current row"
		default:
			data = termsafe.Shorten(termsafe.String(string(j.Data)), 200)
		}
		fmt.Fprintf(tw, "  job %d\t%s\n", j.ID, data)
	}
	_ = tw.Flush()
}

// sameJSON reports whether a and b are the same JSON value, whatever their
// spacing and key order (numbers compared as written).
func sameJSON(a, b []byte) bool {
	decode := func(raw []byte) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	return okA && okB && reflect.DeepEqual(va, vb)
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
			detail = termsafe.Shorten(termsafe.String(termsafe.OneLine(*j.LastError)), 80)
		}
		handler, state := termsafe.String(j.Handler), termsafe.String(j.State)
		if j.Webhook != "" {
			handler = "webhook " + termsafe.Shorten(termsafe.String(j.Webhook), 60)
		}
		if withEvent {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, termsafe.Shorten(termsafe.String(j.EventID), 40),
				termsafe.String(j.EventName), handler, state, j.Attempt, j.MaxAttempts, finalized, detail)
			continue
		}
		if j.State == history.StateCompleted && len(j.Output) > 0 {
			detail = termsafe.Shorten(termsafe.String(string(j.Output)), 80)
		}
		replay := "-"
		if j.ReplayID != nil {
			replay = "#" + strconv.FormatInt(*j.ReplayID, 10)
			if j.ReplayReason != nil {
				replay += " " + termsafe.Shorten(termsafe.String(*j.ReplayReason), 30)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", j.ID, handler, state, j.Attempt, j.MaxAttempts,
			fmtTime(j.CreatedAt), finalized, replay, detail)
	}
	_ = tw.Flush()
}
