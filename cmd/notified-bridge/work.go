package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/internal/web"
	"github.com/notified/notified/internal/worker"
	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

func workCommand() *cli.Command {
	return &cli.Command{
		Name:  "work",
		Usage: "deliver the jobs of webhook routes (routes add --webhook) until SIGINT or SIGTERM",
		Description: "Runs River workers for the built-in kind " + routes.WebhookKind + ": each job POSTs its event, signed per Standard\n" +
			"Webhooks with the secret in the variable its route names (--secret-env), to its route's URL. Run as many as you\n" +
			"like. Private, loopback and link-local targets are refused unless allowed.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "queue", EnvVars: []string{"NOTIFIED_WORK_QUEUES"}, Value: cli.NewStringSlice(routes.WebhookQueue),
				Usage: "River queues to work (repeatable, or comma-separated); they must hold webhook jobs only"},
			&cli.IntFlag{Name: "max-workers", EnvVars: []string{"NOTIFIED_WORK_MAX_WORKERS"}, Value: worker.DefaultMaxWorkers,
				Usage: "deliveries at once, per queue"},
			&cli.DurationFlag{Name: "webhook-timeout", EnvVars: []string{"NOTIFIED_WEBHOOK_TIMEOUT"}, Value: 10 * time.Second,
				Usage: "time for one delivery, reading the answer included; a delivery that times out is retried"},
			&cli.BoolFlag{Name: "webhook-allow-private", EnvVars: []string{"NOTIFIED_WEBHOOK_ALLOW_PRIVATE"},
				Usage: "allow targets at private, loopback and link-local addresses (refused by default, so that a route cannot reach into the worker's network)"},
			&cli.StringSliceFlag{Name: "webhook-allow-cidr", EnvVars: []string{"NOTIFIED_WEBHOOK_ALLOW_CIDRS"},
				Usage: "allow targets in this address range even though private, e.g. 10.1.2.0/24 (repeatable, or comma-separated)"},
			&cli.DurationFlag{Name: "stop-timeout", EnvVars: []string{"NOTIFIED_WORK_STOP_TIMEOUT"}, Value: worker.DefaultStopTimeout,
				Usage: "on SIGINT or SIGTERM, how long running deliveries may finish before they are cancelled (and retried by the next worker)"},
			&cli.DurationFlag{Name: "fetch-cooldown", EnvVars: []string{"NOTIFIED_WORK_FETCH_COOLDOWN"}, Value: river.FetchCooldownDefault,
				Usage: "the shortest time between two fetches of a queue's jobs (River's FetchCooldown, 1ms to 1s): a delivery may wait that long for its turn; " +
					"lower it (e.g. 10ms) for ordered webhook routes with busy keys, whose next delivery is fetched once the last one completes"},
			&cli.IntFlag{Name: "ordered-completions", EnvVars: []string{"NOTIFIED_WORK_ORDERED_COMPLETIONS"}, Value: jobs.DefaultOrderedCompletions,
				Usage: "deliveries of ordered routes a second completed at once, a commit each, so that a busy key's next delivery starts as soon as one is done; " +
					"beyond, River's completer records them in batches every 250 ms, which costs the database less when many keys are busy (0: none)"},
			&cli.StringFlag{Name: "http-addr", EnvVars: []string{"NOTIFIED_HTTP_ADDR"},
				Usage: "serve /healthz, /readyz and /metrics (the delivery metrics) on `ADDR`, e.g. 127.0.0.1:9090; off when empty"},
		},
		Action: runWork,
	}
}

// runWork is work's action: the worker, and the HTTP server when
// --http-addr is set.
func runWork(c *cli.Context) error {
	if _, err := positional(c, 0, "work takes no arguments"); err != nil {
		return err
	}
	var cidrs []netip.Prefix
	for _, s := range c.StringSlice("webhook-allow-cidr") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--webhook-allow-cidr / NOTIFIED_WEBHOOK_ALLOW_CIDRS: %q is not an address range: write it as 10.1.2.0/24 or fd00::/64", s)
		}
		cidrs = append(cidrs, p.Masked())
	}
	if err := refuseZeros(c, "max-workers", "webhook-timeout", "stop-timeout"); err != nil {
		return err
	}
	ordered := c.Int("ordered-completions")
	switch {
	case ordered < 0:
		return fmt.Errorf("--ordered-completions / NOTIFIED_WORK_ORDERED_COMPLETIONS is %d: give a number of deliveries a second, or 0 for none", ordered)
	case ordered == 0:
		ordered = -1 // jobs.WebhookOptions: none
	}
	if d := c.Duration("fetch-cooldown"); d < river.FetchCooldownMin || d > time.Second {
		return fmt.Errorf("--fetch-cooldown / NOTIFIED_WORK_FETCH_COOLDOWN is %s: give a duration from 1ms to 1s (River fetches at least every second)", d)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := worker.Config{
		Schema: c.String("schema"), Queues: c.StringSlice("queue"), MaxWorkers: c.Int("max-workers"),
		StopTimeout: c.Duration("stop-timeout"), FetchCooldown: c.Duration("fetch-cooldown"), Logger: slog.Default(),
		Webhooks: jobs.WebhookOptions{Timeout: c.Duration("webhook-timeout"), AllowPrivate: c.Bool("webhook-allow-private"),
			AllowCIDRs: cidrs, OrderedCompletions: ordered, Registerer: reg},
	}
	pool, err := connectMigrated(c)
	if err != nil {
		return err
	}
	defer pool.Close()
	w, err := worker.New(pool, cfg)
	if err != nil {
		return err
	}
	addr := c.String("http-addr")
	if addr == "" {
		return w.Run(c.Context)
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = web.Serve(ctx, addr, workerOps(w, reg), slog.Default(), nil)
		cancel()
	})
	err = w.Run(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	if c.Context.Err() == nil {
		return serveErr
	}
	return nil
}

// workerOps serves a worker's /healthz, /readyz and /metrics.
func workerOps(w *worker.Worker, gatherer prometheus.Gatherer) *http.ServeMux {
	mux := http.NewServeMux()
	reply := func(rw http.ResponseWriter, code int, v any) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(v)
	}
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		reply(rw, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := w.Ready(ctx); err != nil {
			reply(rw, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
			return
		}
		reply(rw, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}
