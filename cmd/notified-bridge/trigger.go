package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/trigger"
)

func installTriggerCommand() *cli.Command {
	return &cli.Command{
		Name:  "install-trigger",
		Usage: "install the capture trigger: pg_notify(channel, id::text) plus an outbox row, after each insert",
		Flags: []cli.Flag{
			flagTable(), flagChannel(), flagIDField(),
			&cli.BoolFlag{Name: "restart-sequence",
				Usage: "when ids the id column's sequence will produce are already recorded for the channel (a recreated table), restart the sequence past them, in the install's transaction"},
			&cli.BoolFlag{Name: "allow-recorded-ids",
				Usage: "install even when ids the id column's sequence will produce are already recorded for the channel: their events will be skipped as already dispatched"},
			&cli.BoolFlag{Name: "print", Usage: "print the SQL instead of running it"},
			flagJSON(),
		},
		Action: func(c *cli.Context) error {
			opts := trigger.Options{Schema: c.String("schema"), Table: c.String("table"),
				Channel: c.String("channel"), IDColumn: c.String("id-field"),
				RestartSequence: c.Bool("restart-sequence"), AllowRecordedIDs: c.Bool("allow-recorded-ids")}
			if opts.RestartSequence && opts.AllowRecordedIDs {
				return errors.New("install-trigger: --restart-sequence and --allow-recorded-ids exclude each other: restart the sequence past the recorded ids, or let it produce them")
			}
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			if c.Bool("print") {
				r, err := trigger.Inspect(c.Context, pool, opts)
				if err != nil {
					return installTriggerError(err, opts.Table)
				}
				fmt.Fprint(c.App.Writer, r.SQL)
				printWarnings(c, r.Warnings)
				return nil
			}
			r, err := trigger.Apply(c.Context, pool, opts)
			if err != nil {
				return installTriggerError(err, opts.Table)
			}
			printWarnings(c, r.Warnings)
			if c.Bool("json") {
				out := map[string]string{"trigger": r.Trigger, "table": opts.Table,
					"channel": opts.Channel, "id_column": opts.IDColumn}
				if r.Restart != nil {
					out["restarted_sequence"] = r.Restart.Sequence
					out["restarted_at"] = strconv.FormatInt(r.Restart.Value, 10)
				}
				if len(r.Warnings) > 0 {
					out["warning"] = strings.Join(r.Warnings, "\n")
				}
				return printJSON(c.App.Writer, out)
			}
			fmt.Fprintf(c.App.Writer, "trigger %s installed on %s: notifies channel %q with %s::text and records the outbox row\n",
				termsafe.String(r.Trigger), termsafe.String(opts.Table), opts.Channel, termsafe.String(opts.IDColumn))
			if r.Restart != nil {
				fmt.Fprintf(c.App.Writer, "%s, past the ids recorded for channel %q\n", termsafe.String(r.Restart.String()), opts.Channel)
			}
			return nil
		},
	}
}

func uninstallTriggerCommand() *cli.Command {
	return &cli.Command{
		Name:  "uninstall-trigger",
		Usage: "remove the capture trigger from the events table, and its function unless another trigger calls it (idempotent)",
		Flags: []cli.Flag{flagTable(), flagChannel(), flagIDField(), flagJSON()},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unexpectedArgument(c, c.Args().First(), "the table goes in --table")
			}
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			opts := trigger.Options{Schema: c.String("schema"), Table: c.String("table"),
				Channel: c.String("channel"), IDColumn: c.String("id-field")}
			r, err := trigger.Uninstall(c.Context, pool, opts)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, r)
			}
			printRemoval(c.App.Writer, r, opts.Channel)
			return nil
		},
	}
}

// printRemoval says what uninstall-trigger removed, and what it left.
func printRemoval(w io.Writer, r *trigger.Removal, channel string) {
	trg, table, fn := termsafe.String(r.Trigger), termsafe.String(r.Table), termsafe.String(r.Function)
	switch {
	case r.TriggerRemoved:
		fmt.Fprintf(w, "capture trigger %s removed from %s (channel %q): inserts no longer record outbox rows for the bridge\n", trg, table, channel)
	case !r.FunctionRemoved && len(r.FunctionUsers) == 0:
		fmt.Fprintf(w, "no capture trigger for channel %q on %s, nor its function %s: nothing to remove\n", channel, table, fn)
	default:
		fmt.Fprintf(w, "no capture trigger for channel %q on %s\n", channel, table)
	}
	switch {
	case r.FunctionRemoved:
		fmt.Fprintf(w, "function %s removed\n", fn)
	case len(r.FunctionUsers) > 0:
		fmt.Fprintf(w, "function %s kept: trigger(s) %s still call it\n", fn, termsafe.String(strings.Join(r.FunctionUsers, ", ")))
	}
	if len(r.OtherCaptureTriggers) > 0 {
		fmt.Fprintf(w, "left on %s: capture trigger(s) %s, for another channel or id column (give their --channel and --id-field to remove them)\n",
			table, termsafe.String(strings.Join(r.OtherCaptureTriggers, ", ")))
	}
}

// installTriggerError names the flags where the trigger package names its
// options.
func installTriggerError(err error, table string) error {
	var recorded *trigger.RecordedIDsError
	if errors.As(err, &recorded) {
		return fmt.Errorf("install trigger on %s: %s", table, recorded.Explain("--restart-sequence", "--channel", "--allow-recorded-ids"))
	}
	return err
}

// printWarnings prints each warning on standard error, on one line.
func printWarnings(c *cli.Context, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+termsafe.String(termsafe.OneLine(w)))
	}
}
