package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/internal/webhook"
	"github.com/notified/notified/routes"
)

func routesCommand() *cli.Command {
	return &cli.Command{
		Name:        "routes",
		Usage:       "add, list and remove routes from event names to handler kinds",
		Subcommands: []*cli.Command{routesAddCommand(), routesListCommand(), routesRemoveCommand()},
	}
}

func routesAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "route events named EVENT to the handler kind KIND, or with --webhook to a URL (updates options if the route exists)",
		ArgsUsage: "EVENT KIND | --webhook URL EVENT",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "queue", Value: routes.DefaultQueue, Usage: "River queue of the jobs"},
			&cli.IntFlag{Name: "priority", Value: routes.DefaultPriority, Usage: "River priority of the jobs, 1 (highest) to 4"},
			&cli.IntFlag{Name: "max-attempts", Value: routes.DefaultMaxAttempts, Usage: "attempts before River discards a failing job"},
			&cli.StringFlag{Name: "where", Usage: "filter: only events whose row matches this jsonpath predicate get a job, e.g. '$.total > 1000' (default: every event)"},
			&cli.StringFlag{Name: "ordered-by", Usage: "order the jobs per key: jobs whose events have the same value at this jsonpath run one at a time, in commit order, e.g. '$.order_id'; events without it are not ordered (default: not ordered)"},
			&cli.StringFlag{Name: "on-failure", Value: routes.OnFailureContinue, Usage: "what an ordered lane does after a job is discarded or cancelled: continue with the next job, or stop until `lanes resume`"},
			&cli.StringFlag{Name: "webhook", Usage: "deliver the events over HTTP: POST each, signed per Standard Webhooks, to this http(s) URL, from `notified-bridge work` (the kind is " + routes.WebhookKind + "; no KIND argument)"},
			&cli.StringFlag{Name: "secret-env", Usage: "with --webhook: the worker's environment variable that holds the signing secret (whsec_...), named " + routes.SecretEnvPrefix + "..., e.g. " + routes.SecretEnvPrefix + "_WELCOME; the secret is never stored"},
			flagJSON(),
		},
		Action: func(c *cli.Context) error {
			var args []string
			var err error
			if c.IsSet("webhook") {
				args, err = positional(c, 1, "routes add --webhook URL takes one argument, EVENT, e.g. routes add --webhook https://app.internal/hooks/welcome user_signed_up")
				args = append(args, routes.WebhookKind)
			} else {
				args, err = positional(c, 2, "routes add takes two arguments, EVENT and KIND, e.g. routes add user_signed_up send_welcome_email")
			}
			if err != nil {
				return err
			}
			queue := c.String("queue")
			if c.IsSet("webhook") && !c.IsSet("queue") {
				queue = routes.WebhookQueue
			}
			r := routes.Route{Event: args[0], Kind: args[1], Queue: queue, Webhook: c.String("webhook"), SecretEnv: c.String("secret-env"),
				Priority: c.Int("priority"), MaxAttempts: c.Int("max-attempts"), Where: strings.TrimSpace(c.String("where")),
				OrderedBy: strings.TrimSpace(c.String("ordered-by")), OnFailure: c.String("on-failure")}
			// The Go API reads 0 as "the default"; on the command line
			// an explicit 0 is a mistake.
			if r.Priority == 0 {
				return fmt.Errorf("route %s -> %s: priority 0 is out of range: use 1 (highest) to 4", r.Event, r.Kind)
			}
			if r.MaxAttempts == 0 {
				return fmt.Errorf("route %s -> %s: max attempts 0 is out of range: use 1 to 32767", r.Event, r.Kind)
			}
			if c.IsSet("where") && r.Where == "" {
				return fmt.Errorf("route %s -> %s: --where is empty: give a jsonpath predicate, e.g. --where '%s', or leave --where out for every event", r.Event, r.Kind, routes.WhereExample)
			}
			if c.IsSet("webhook") && strings.TrimSpace(r.Webhook) == "" {
				return fmt.Errorf("route %s: --webhook is empty: give the URL to deliver to, e.g. --webhook https://app.internal/hooks/welcome", r.Event)
			}
			if c.IsSet("secret-env") && !c.IsSet("webhook") {
				return fmt.Errorf("route %s -> %s: --secret-env applies to webhook routes: add --webhook URL", r.Event, r.Kind)
			}
			if c.IsSet("ordered-by") && r.OrderedBy == "" {
				return fmt.Errorf("route %s -> %s: --ordered-by is empty: give a jsonpath that selects the key, e.g. --ordered-by '%s', or leave --ordered-by out", r.Event, r.Kind, routes.OrderedByExample)
			}
			if r.OnFailure == routes.OnFailureStop && r.OrderedBy == "" {
				return fmt.Errorf("route %s -> %s: --on-failure stop applies to ordered routes: add --ordered-by, e.g. --ordered-by '%s'", r.Event, r.Kind, routes.OrderedByExample)
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			// Add refuses an invalid route, saying what is wrong with it;
			// the server checks the filter.
			if err := routes.NewStore(pool, c.String("schema")).Add(c.Context, r); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, r)
			}
			where := ""
			if r.Where != "" {
				where = ", where " + termsafe.String(r.Where)
			}
			if r.OrderedBy != "" {
				where += ", ordered by " + termsafe.String(r.OrderedBy) + " (" + onFailureText(r.OnFailure) + ")"
			}
			if r.SecretEnv != "" {
				where += ", signed with $" + r.SecretEnv
			}
			fmt.Fprintf(c.App.Writer, "route added: %s -> %s (queue %s, priority %d, max attempts %d%s)\n",
				termsafe.String(r.Event), termsafe.String(targetText(r)), termsafe.String(r.Queue), r.Priority, r.MaxAttempts, where)
			if r.Webhook != "" {
				fmt.Fprintf(c.App.Writer, "its jobs are delivered by `notified-bridge work` (queue %s)\n", termsafe.String(r.Queue))
				if r.SecretEnv == "" {
					fmt.Fprintln(c.App.Writer, "warning: requests are not signed, so the receiver cannot tell them from anyone's: add --secret-env")
				}
			}
			if r.OrderedBy != "" {
				fmt.Fprintln(c.App.Writer, "ordering applies to the events dispatched from now on; an event whose row has no value at the key runs unordered")
			}
			return nil
		},
	}
}

func routesListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list every route",
		Flags: []cli.Flag{flagJSON()},
		Action: func(c *cli.Context) error {
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			rs, err := routes.NewStore(pool, c.String("schema")).List(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if rs == nil {
					rs = []routes.Route{}
				}
				return printJSON(c.App.Writer, rs)
			}
			if len(rs) == 0 {
				fmt.Fprintln(c.App.Writer, "no routes: add one with `notified-bridge routes add EVENT KIND`")
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EVENT\tKIND\tQUEUE\tPRIORITY\tMAX ATTEMPTS\tWHERE\tORDERED BY")
			ordered := false
			for _, r := range rs {
				where, orderedBy := "-", "-"
				if r.Where != "" {
					where = termsafe.String(r.Where)
				}
				if r.OrderedBy != "" {
					orderedBy = termsafe.String(r.OrderedBy) + " (" + onFailureText(r.OnFailure) + ")"
					ordered = true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", termsafe.String(r.Event), termsafe.String(targetText(r)), termsafe.String(r.Queue),
					r.Priority, r.MaxAttempts, where, orderedBy)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if ordered {
				fmt.Fprintln(c.App.Writer, "ordered routes: an event whose row has no value (or null) at the key runs unordered; see `notified-bridge lanes list`")
			}
			return nil
		},
	}
}

func routesRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "remove the route from EVENT to KIND, or with --webhook to a URL",
		ArgsUsage: "EVENT KIND | --webhook URL EVENT",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "webhook", Usage: "remove the webhook route of EVENT to this URL"},
			flagJSON(),
		},
		Action: func(c *cli.Context) error {
			var args []string
			var err error
			if c.IsSet("webhook") {
				args, err = positional(c, 1, "routes remove --webhook URL takes one argument, EVENT")
				args = append(args, routes.WebhookKind)
			} else {
				args, err = positional(c, 2, "routes remove takes two arguments, EVENT and KIND")
			}
			if err != nil {
				return err
			}
			pool, err := connectMigrated(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			store := routes.NewStore(pool, c.String("schema"))
			var ok bool
			if c.IsSet("webhook") {
				ok, err = store.RemoveWebhook(c.Context, args[0], c.String("webhook"))
			} else {
				ok, err = store.Remove(c.Context, args[0], args[1])
			}
			if err != nil {
				return err
			}
			if !ok {
				target := args[1]
				if c.IsSet("webhook") {
					target = "webhook " + webhook.Redact(c.String("webhook"))
				}
				return fmt.Errorf("no route %s -> %s: see `notified-bridge routes list`", termsafe.String(args[0]), termsafe.String(target))
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, map[string]any{"event": args[0], "kind": args[1], "removed": true})
			}
			fmt.Fprintf(c.App.Writer, "route removed: %s -> %s\n", termsafe.String(args[0]), termsafe.String(args[1]))
			return nil
		},
	}
}

// onFailureText says what an ordered route does at a failure.
func onFailureText(onFailure string) string {
	if onFailure == routes.OnFailureStop {
		return "stops at a failure"
	}
	return "goes on past a failure"
}

// targetText names a route's handler for people: its kind, or for a
// webhook route "webhook" and its URL.
func targetText(r routes.Route) string {
	if r.Webhook != "" {
		return "webhook " + webhook.Redact(r.Webhook)
	}
	return r.Kind
}
