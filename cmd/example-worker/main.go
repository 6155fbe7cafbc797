// Command example-worker is the smallest useful worker process: it declares
// a route for the events it handles, registers a handler for its kind as a
// River worker, and runs until SIGINT or SIGTERM.
//
//	DATABASE_URL=postgres://... go run ./cmd/example-worker --event user_signed_up
//
// The handler, print_event, logs the event it receives and records a small
// output on the job. Copy it and replace the handler with your own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// PrintEvent is the handler kind of this worker.
type PrintEvent struct{}

// Kind returns the handler kind.
func (PrintEvent) Kind() string { return "print_event" }

// config is what the worker is told on the command line.
type config struct {
	databaseURL string
	schema      string
	events      []string
}

func main() {
	var cfg config
	var events string
	flag.StringVar(&cfg.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres URL (default $DATABASE_URL)")
	flag.StringVar(&cfg.schema, "schema", os.Getenv("NOTIFIED_SCHEMA"), "schema of River's and notified's tables (default $NOTIFIED_SCHEMA)")
	flag.StringVar(&events, "event", "user_signed_up", "comma-separated event names to route to print_event")
	flag.Parse()
	cfg.events = strings.Split(events, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "example-worker: "+err.Error())
		os.Exit(1)
	}
}

// run declares the routes, starts a River client with the handler and works
// jobs until ctx is done, then stops the client gracefully.
func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	if cfg.databaseURL == "" {
		return errors.New("no database: set DATABASE_URL or --database-url")
	}
	pool, err := pgxpool.New(ctx, cfg.databaseURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()

	store := routes.NewStore(pool, cfg.schema)
	for _, ev := range cfg.events {
		if err := store.Ensure(ctx, routes.Route{Event: strings.TrimSpace(ev), Kind: PrintEvent{}.Kind()}); err != nil {
			return err
		}
	}

	workers := river.NewWorkers()
	if err := jobs.Handle[PrintEvent](workers, func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		logger.Info("event", slog.String("id", ev.ID), slog.String("name", ev.Name),
			slog.Int("attempt", ev.Job.Attempt), slog.String("data", string(ev.Data)))
		return jobs.Success(map[string]string{"printed": ev.ID}), nil
	}); err != nil {
		return err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:  cfg.schema,
		Logger:  logger,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
	})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	logger.Info("worker running", slog.String("kind", PrintEvent{}.Kind()), slog.Any("events", cfg.events))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop river client: %w", err)
	}
	return nil
}
