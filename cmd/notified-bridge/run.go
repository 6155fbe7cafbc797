package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/notified/notified/bridge"
	"github.com/notified/notified/internal/web"
)

func flagHTTPAddr() cli.Flag {
	return &cli.StringFlag{Name: "http-addr", EnvVars: []string{"NOTIFIED_HTTP_ADDR"},
		Usage: "serve /healthz, /readyz, /metrics and the web UI (River UI under /riverui/, event history under /events/ID) on `ADDR`, e.g. 127.0.0.1:8080; off when empty"}
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "listen and dispatch events as River jobs until SIGINT or SIGTERM",
		Flags: []cli.Flag{
			flagTable(), flagIDField(), flagNameField(), flagChannel(),
			&cli.StringFlag{Name: "poll-interval", EnvVars: []string{"NOTIFIED_CHANNEL_SELECT_TIMEOUT"}, Value: "5",
				Usage: "how often to catch up without a notification: seconds (5, 0.5) or a duration (500ms)"},
			&cli.BoolFlag{Name: "poll-only", EnvVars: []string{"NOTIFIED_POLL_ONLY"},
				Usage: "do not LISTEN; only poll every --poll-interval (for a transaction-pooling proxy such as PgBouncer)"},
			&cli.IntFlag{Name: "batch-size", EnvVars: []string{"NOTIFIED_BATCH_SIZE"}, Value: bridge.DefaultBatchSize,
				Usage: "events per dispatch transaction, at most"},
			&cli.IntFlag{Name: "concurrency", EnvVars: []string{"NOTIFIED_CONCURRENCY"}, Value: bridge.DefaultConcurrency,
				Usage: "dispatch transactions at once while draining a backlog"},
			&cli.DurationFlag{Name: "missing-grace", EnvVars: []string{"NOTIFIED_MISSING_GRACE"}, Value: bridge.DefaultMissingGrace,
				Usage: "how long to retry an id whose row is not visible before recording it as missing"},
			&cli.DurationFlag{Name: "batch-timeout", EnvVars: []string{"NOTIFIED_BATCH_TIMEOUT"}, Value: bridge.DefaultBatchTimeout,
				Usage: "how long one statement of a dispatch transaction may run; a batch past it is split, an event past it alone is rejected"},
			&cli.Int64Flag{Name: "max-batch-bytes", EnvVars: []string{"NOTIFIED_MAX_BATCH_BYTES"}, Value: bridge.DefaultMaxBatchBytes,
				Usage: "row data, as JSON, one dispatch transaction reads at most; the rows past it wait for the next batch"},
			&cli.Int64Flag{Name: "large-row-bytes", EnvVars: []string{"NOTIFIED_LARGE_ROW_BYTES"}, Value: bridge.DefaultLargeRowBytes,
				Usage: "rows larger than this, as JSON, are never read by the bridge: their jobs are inserted by the server"},
			&cli.BoolFlag{Name: "no-capture-trigger", EnvVars: []string{"NOTIFIED_NO_CAPTURE_TRIGGER"},
				Usage: "events are announced without the capture trigger (publish, notify, or the outbox insert in the producers' SQL): do not report the table's missing trigger"},
			flagRetention(),
			flagHTTPAddr(),
			&cli.BoolFlag{Name: "ui", EnvVars: []string{"NOTIFIED_UI"}, Value: true,
				Usage: "serve the web UI on --http-addr; with --ui=false only /healthz, /readyz and /metrics are served"},
			&cli.BoolFlag{Name: "insecure-ui", EnvVars: []string{"NOTIFIED_INSECURE_UI"},
				Usage: "allow the web UI on a non-loopback --http-addr without NOTIFIED_UI_USER/NOTIFIED_UI_PASSWORD"},
			&cli.StringFlag{Name: "ui-user", EnvVars: []string{"NOTIFIED_UI_USER"}, Usage: "user for the web UI's basic auth"},
			&cli.StringFlag{Name: "ui-password", EnvVars: []string{"NOTIFIED_UI_PASSWORD"}, Usage: "password for the web UI's basic auth (prefer the environment variable)"},
			&cli.StringSliceFlag{Name: "ui-allowed-host", EnvVars: []string{"NOTIFIED_UI_ALLOWED_HOSTS"},
				Usage: "another `HOST` name (on any port; HOST:PORT for one port) the web UI answers to in the Host header, e.g. a reverse proxy's; " +
					"the host of --http-addr and, for loopback or every interface, localhost, 127.0.0.1 and [::1] always are (repeatable, or comma-separated)"},
		},
		Action: runBridge,
	}
}

// runBridge is run's action: the bridge, and the HTTP server when
// --http-addr is set.
func runBridge(c *cli.Context) error {
	cfg, err := runConfig(c)
	if err != nil {
		return err
	}
	ui, err := uiConfig(c)
	if err != nil {
		return err
	}
	pool, err := connect(c, int32(max(cfg.Concurrency, 1)+2))
	if err != nil {
		return err
	}
	defer pool.Close()
	b, err := bridge.New(c.Context, pool, cfg)
	if err != nil {
		return err
	}
	if ui.addr == "" {
		return b.Run(c.Context)
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), b)
	mux := web.Ops(b, reg)
	if ui.enabled {
		h, err := web.New(ctx, web.Options{Pool: pool, Events: cfg, User: ui.user, Password: ui.password,
			Addr: ui.addr, AllowedHosts: ui.allowedHosts, AllowedHostsSetting: "--ui-allowed-host (NOTIFIED_UI_ALLOWED_HOSTS)",
			Logger: slog.Default()})
		if err != nil {
			return err
		}
		mux.Handle("/", h)
	}
	return serveWhileRunning(c.Context, ctx, cancel, b, ui.addr, mux)
}

// runConfig is the bridge's configuration from run's flags.
func runConfig(c *cli.Context) (bridge.Config, error) {
	interval, err := bridge.ParseInterval(c.String("poll-interval"))
	if err != nil {
		return bridge.Config{}, fmt.Errorf("--poll-interval / NOTIFIED_CHANNEL_SELECT_TIMEOUT: %w", err)
	}
	cfg := bridge.Config{
		Schema: c.String("schema"), Table: c.String("table"), IDColumn: c.String("id-field"),
		NameColumn: c.String("name-field"), Channel: c.String("channel"), PollInterval: interval,
		PollOnly: c.Bool("poll-only"), NoCaptureTrigger: c.Bool("no-capture-trigger"),
		BatchSize: c.Int("batch-size"), Concurrency: c.Int("concurrency"), MissingGrace: c.Duration("missing-grace"),
		BatchTimeout: c.Duration("batch-timeout"), MaxBatchBytes: c.Int64("max-batch-bytes"), LargeRowBytes: c.Int64("large-row-bytes"),
		Version: versionString(), Logger: slog.Default(),
	}
	if !c.IsSet("large-row-bytes") {
		// Left to the library, which bounds its default by MaxBatchBytes:
		// --max-batch-bytes below 1 MiB alone is then a valid setting.
		cfg.LargeRowBytes = 0
	}
	if cfg.Retention, err = retention(c); err != nil {
		return cfg, err
	}
	if err := refuseZeros(c, "batch-size", "concurrency", "missing-grace"); err != nil {
		return cfg, err
	}
	// Every other value is the library's to check, before connecting; its
	// errors name the fields, which main names as flags.
	return cfg, cfg.WithDefaults().Validate()
}

// refuseZeros refuses the flags named when they are given as 0:
// bridge.Config reads 0 as "the default", so a 0 written on the command
// line or in the environment, a mistake the library cannot see, would
// silently become the default.
func refuseZeros(c *cli.Context, names ...string) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if !slices.Contains(names, name) || !c.IsSet(name) || !reflect.ValueOf(c.Value(name)).IsZero() {
			continue
		}
		def := ""
		if d, ok := f.(cli.DocGenerationFlag); ok && d.GetDefaultText() != "" {
			def = " (" + d.GetDefaultText() + ")"
		}
		return fmt.Errorf("%s is %v: give a positive value, or leave it unset for the default%s", flagAndEnv(f), c.Value(name), def)
	}
	return nil
}

// uiSettings are run's HTTP flags.
type uiSettings struct {
	addr           string // empty: no HTTP server
	enabled        bool   // the web UI, beside /healthz, /readyz and /metrics
	user, password string
	allowedHosts   []string
}

// uiConfig reads and checks run's HTTP flags.
func uiConfig(c *cli.Context) (uiSettings, error) {
	ui := uiSettings{addr: c.String("http-addr"), enabled: c.Bool("ui"), user: c.String("ui-user"), password: c.String("ui-password")}
	for _, h := range c.StringSlice("ui-allowed-host") {
		if h != "" { // "a,,b", a trailing comma, an empty variable
			ui.allowedHosts = append(ui.allowedHosts, h)
		}
	}
	if ui.addr == "" || !ui.enabled {
		return ui, nil
	}
	if (ui.user == "") != (ui.password == "") {
		return ui, errors.New("set both NOTIFIED_UI_USER and NOTIFIED_UI_PASSWORD, or neither")
	}
	if err := web.CheckAddr(ui.addr, ui.user != "", c.Bool("insecure-ui")); err != nil {
		return ui, err
	}
	if err := web.CheckAllowedHosts(ui.allowedHosts); err != nil {
		return ui, fmt.Errorf("--ui-allowed-host / NOTIFIED_UI_ALLOWED_HOSTS: %w", err)
	}
	return ui, nil
}

// serveWhileRunning runs the bridge and the HTTP server together: they stop
// together, and a server that cannot listen stops the bridge, so that a
// supervisor sees the failure.
func serveWhileRunning(parent, ctx context.Context, cancel context.CancelFunc, b *bridge.Bridge, addr string, h http.Handler) error {
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = web.Serve(ctx, addr, h, slog.Default(), nil)
		cancel()
	})
	err := b.Run(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	if parent.Err() == nil {
		return serveErr
	}
	return nil
}
