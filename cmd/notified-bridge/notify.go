package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/publish"
)

func notifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "notify",
		Usage:     "announce an existing event by id, durably (outbox row and pg_notify), like NotifyClient; an event dispatched already is left alone (see replay)",
		ArgsUsage: "ID",
		Flags:     []cli.Flag{flagChannel(), flagJSON()},
		Action: func(c *cli.Context) error {
			args, err := positional(c, 1, "notify takes one argument, the event id")
			if err != nil {
				return err
			}
			pub, err := publish.New(c.String("schema"), c.String("channel"))
			if err != nil {
				return err
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := pub.Announce(c.Context, pool, args[0])
			if err != nil {
				return err
			}
			return printNotified(c, args[0], res)
		},
	}
}

// notifyJSON is notify's --json output.
type notifyJSON struct {
	EventID string `json:"event_id"`
	Channel string `json:"channel"`
	// AlreadyDispatched is the event's dispatch record when notify left it
	// alone, and ReplayCommand what runs its handlers again.
	AlreadyDispatched *dispatchJSON `json:"already_dispatched,omitempty"`
	ReplayCommand     string        `json:"replay_command,omitempty"`
}

type dispatchJSON struct {
	At      time.Time `json:"dispatched_at"`
	Outcome string    `json:"outcome"`
	Jobs    int       `json:"jobs"`
}

// printNotified says what notify did with event id.
func printNotified(c *cli.Context, id string, res publish.Result) error {
	channel := c.String("channel")
	out := notifyJSON{EventID: id, Channel: channel}
	if d := res.Dispatched; d != nil {
		out.AlreadyDispatched = &dispatchJSON{At: d.At, Outcome: d.Outcome, Jobs: d.Jobs}
		out.ReplayCommand = replayCommandFor(c.String("schema"), channel, id)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, out)
	}
	w := c.App.Writer
	d := res.Dispatched
	if d == nil {
		fmt.Fprintf(w, "notified %s on channel %q\n", termsafe.String(id), channel)
		return nil
	}
	fmt.Fprintf(w, "event %s on channel %q was already dispatched at %s (%s, %s): notify does not run its handlers again\n",
		termsafe.String(id), channel, fmtTime(d.At), termsafe.String(d.Outcome), plural(d.Jobs, "job"))
	fmt.Fprintf(w, "to run them again, replay it:\n  %s\n", termsafe.String(out.ReplayCommand))
	return nil
}

// replayCommandFor is the replay command that dispatches event id of
// channel again, with the schema and channel notify was given, ready to
// paste once the reason is filled in.
func replayCommandFor(schema, channel, id string) string {
	cmd := []string{"notified-bridge", "replay"}
	if schema != "" {
		cmd = append(cmd, "--schema", shellQuote(schema))
	}
	if channel != bridge.DefaultChannel {
		cmd = append(cmd, "--channel", shellQuote(channel))
	}
	cmd = append(cmd, "--id", shellQuote(id), "--reason", "'why it runs again'")
	return strings.Join(cmd, " ")
}

// shellQuote quotes s for a POSIX shell, unless it needs no quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/=@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
