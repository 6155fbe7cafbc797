package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/termsafe"
	"github.com/notified/notified/migrations"
	"github.com/notified/notified/routes"
	"github.com/notified/notified/trigger"
)

func setupCommand() *cli.Command {
	return &cli.Command{
		Name:  "setup",
		Usage: "one-shot set-up for deployments: migrate, install the capture trigger, and add routes (each step idempotent)",
		Flags: []cli.Flag{
			flagTable(), flagChannel(), flagIDField(), flagJSON(),
			&cli.StringSliceFlag{Name: "route", EnvVars: []string{"NOTIFIED_ROUTES"},
				Usage: "route EVENT=KIND to add, with options after semicolons: EVENT=KIND;queue=Q;priority=N;max-attempts=N;where=PREDICATE;ordered-by=PATH;on-failure=stop, or for a webhook EVENT=notified_webhook;webhook=URL;secret-env=NAME (repeatable; in the environment, comma-separated)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return unexpectedArgument(c, c.Args().First(), "routes go in --route EVENT=KIND")
			}
			var rs []routes.Route
			for _, spec := range c.StringSlice("route") {
				r, err := parseRouteSpec(spec)
				if err != nil {
					return err
				}
				// AddMissing validates the routes too, but only after the
				// migration and the trigger: checked here, a bad route
				// changes nothing.
				if err := r.Validate(); err != nil {
					return err
				}
				rs = append(rs, r)
			}
			pool, err := connect(c, 2)
			if err != nil {
				return err
			}
			defer pool.Close()
			res, err := migrations.Migrate(c.Context, pool, c.String("schema"))
			if err != nil {
				return err
			}
			opts := trigger.Options{Schema: c.String("schema"), Table: c.String("table"),
				Channel: c.String("channel"), IDColumn: c.String("id-field")}
			tr, err := trigger.Apply(c.Context, pool, opts)
			if err != nil {
				return err
			}
			printWarnings(c, tr.Warnings)
			trgName := tr.Trigger
			// Routes that exist keep their options (set with routes add):
			// running setup again on every deploy changes nothing.
			added, err := routes.NewStore(pool, c.String("schema")).AddMissing(c.Context, rs...)
			if err != nil {
				return err
			}
			isNew := map[string]bool{}
			for _, r := range added {
				isNew[r.Event+"\x00"+r.Kind] = true
			}
			if c.Bool("json") {
				if rs == nil {
					rs = []routes.Route{}
				}
				return printJSON(c.App.Writer, map[string]any{"migrate": res, "trigger": trgName,
					"table": opts.Table, "channel": opts.Channel, "routes": rs})
			}
			fmt.Fprintf(c.App.Writer, "schema %s migrated (River %v, notified %v applied now)\n", termsafe.String(res.Schema), res.RiverVersions, res.Versions)
			fmt.Fprintf(c.App.Writer, "trigger %s installed on %s (channel %q)\n", termsafe.String(trgName), termsafe.String(opts.Table), opts.Channel)
			for _, r := range rs {
				state := "exists, left as it is"
				if isNew[r.Event+"\x00"+r.Kind] {
					state = "added"
				}
				fmt.Fprintf(c.App.Writer, "route %s -> %s (%s)\n", termsafe.String(r.Event), termsafe.String(r.Kind), state)
			}
			return nil
		},
	}
}

func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 if a running bridge's /readyz answers ready, else 1 (for container health checks)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http-addr", EnvVars: []string{"NOTIFIED_HTTP_ADDR"},
				Usage: "the `ADDR` the bridge serves HTTP on, as given to run (:8080 is asked on 127.0.0.1:8080)"},
			&cli.StringFlag{Name: "path", Value: "/readyz", Usage: "path to ask: /readyz (ready) or /healthz (alive)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "give up after this long"},
		},
		Action: func(c *cli.Context) error {
			addr := c.String("http-addr")
			if addr == "" {
				return errors.New("healthcheck: no address: set --http-addr or NOTIFIED_HTTP_ADDR to the bridge's, e.g. :8080")
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("healthcheck: --http-addr %q is not host:port or :port", addr)
			}
			// The bridge listening on every interface answers on loopback.
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			url := "http://" + net.JoinHostPort(host, port) + c.String("path")
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %s: %w", url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			if resp.StatusCode != http.StatusOK {
				var r struct{ Reasons []string }
				if json.Unmarshal(body, &r) == nil && len(r.Reasons) > 0 {
					return fmt.Errorf("healthcheck: not ready: %s", strings.Join(r.Reasons, "; "))
				}
				return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
			}
			fmt.Fprintln(c.App.Writer, "ok")
			return nil
		},
	}
}

// parseRouteSpec reads a --route of setup: EVENT=KIND, then options as
// name=value after semicolons (a value may hold "=": jsonpath's ==).
func parseRouteSpec(spec string) (routes.Route, error) {
	parts := strings.Split(strings.TrimSpace(spec), ";")
	event, kind, ok := strings.Cut(parts[0], "=")
	event, kind = strings.TrimSpace(event), strings.TrimSpace(kind)
	if !ok || event == "" || kind == "" {
		return routes.Route{}, fmt.Errorf("--route %q is not EVENT=KIND, e.g. --route user_signed_up=send_welcome_email", spec)
	}
	r := routes.Route{Event: event, Kind: kind}
	if kind == routes.WebhookKind {
		r.Queue = routes.WebhookQueue
	}
	for _, opt := range parts[1:] {
		name, value, ok := strings.Cut(opt, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || value == "" {
			return routes.Route{}, fmt.Errorf("--route %q: option %q is not NAME=VALUE, e.g. %s=%s;ordered-by=%s", spec, opt, event, kind, routes.OrderedByExample)
		}
		number := func(v *int) {
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				n = -1
			}
			*v = n
		}
		switch name {
		case "queue":
			r.Queue = value
		case "priority":
			number(&r.Priority)
		case "max-attempts":
			number(&r.MaxAttempts)
		case "where":
			r.Where = value
		case "ordered-by":
			r.OrderedBy = value
		case "on-failure":
			r.OnFailure = value
		case "webhook":
			r.Webhook = value
		case "secret-env":
			r.SecretEnv = value
		default:
			return routes.Route{}, fmt.Errorf("--route %q: unknown option %q: use queue, priority, max-attempts, where, ordered-by, on-failure, webhook or secret-env", spec, name)
		}
		if r.Priority < 0 || r.MaxAttempts < 0 {
			return routes.Route{}, fmt.Errorf("--route %q: %s %q is not a positive number", spec, name, value)
		}
	}
	return r, nil
}
