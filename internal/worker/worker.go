// Package worker runs River workers for notified's built-in handlers: the
// process behind `notified-bridge work`, for users with no Go code of
// their own. It works the webhook queue with the webhook handler
// (jobs.RegisterWebhooks) and stops gracefully.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/routes"
)

// Defaults of Config.
const (
	DefaultMaxWorkers  = 50
	DefaultStopTimeout = 30 * time.Second
	// hardStopTimeout bounds the wait for cancelled jobs to return after
	// the stop timeout.
	hardStopTimeout = 10 * time.Second
)

// Config says what a worker works.
type Config struct {
	// Schema holds River's and notified's tables (empty: the connection's
	// current schema).
	Schema string
	// Queues are the River queues worked (default routes.WebhookQueue).
	// Only webhook jobs may be in them: the worker knows no other kind.
	Queues []string
	// MaxWorkers is how many jobs of each queue run at once (default 50).
	MaxWorkers int
	// Webhooks configure the webhook handler.
	Webhooks jobs.WebhookOptions
	// StopTimeout is how long a stop waits for running jobs before
	// cancelling them (default 30s); River puts them back in their queue.
	StopTimeout time.Duration
	// FetchCooldown is River's minimum time between fetches of a queue
	// (default River's, 100ms).
	FetchCooldown time.Duration
	// Logger receives the worker's and River's logs (default slog's).
	Logger *slog.Logger
}

// Worker is a River client working notified's built-in handlers.
type Worker struct {
	cfg    Config
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

// New builds a worker on pool. Its River client takes no part in River's
// leader election: the leader's maintenance (its rescuer discards stuck
// jobs of kinds its client does not know) is left to clients that know
// every kind.
func New(pool *pgxpool.Pool, cfg Config) (*Worker, error) {
	if len(cfg.Queues) == 0 {
		cfg.Queues = []string{routes.WebhookQueue}
	}
	cfg.MaxWorkers = cmp.Or(cfg.MaxWorkers, DefaultMaxWorkers)
	cfg.StopTimeout = cmp.Or(cfg.StopTimeout, DefaultStopTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case cfg.MaxWorkers < 1 || cfg.MaxWorkers > 10_000:
		return nil, fmt.Errorf("MaxWorkers %d is out of range: use 1 to 10000", cfg.MaxWorkers)
	case cfg.StopTimeout < 0:
		return nil, fmt.Errorf("StopTimeout %s is negative: give a positive duration", cfg.StopTimeout)
	}
	workers := river.NewWorkers()
	if err := jobs.RegisterWebhooks(workers, cfg.Webhooks); err != nil {
		return nil, err
	}
	queues := make(map[string]river.QueueConfig, len(cfg.Queues))
	for _, q := range cfg.Queues {
		queues[q] = river.QueueConfig{MaxWorkers: cfg.MaxWorkers}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:                 cfg.Schema,
		Queues:                 queues,
		Workers:                workers,
		Logger:                 cfg.Logger,
		LeaderElectionDisabled: true,
		FetchCooldown:          cfg.FetchCooldown,
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return &Worker{cfg: cfg, pool: pool, client: client}, nil
}

// Run works the queues until ctx is done, then stops gracefully (see
// StopClient).
func (w *Worker) Run(ctx context.Context) error {
	// Cancelling the context given to Start would cancel running jobs at
	// once; the stop below is graceful first.
	if err := w.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	w.cfg.Logger.Info("worker running", slog.String("kind", routes.WebhookKind), slog.Any("queues", w.cfg.Queues),
		slog.Int("max_workers", w.cfg.MaxWorkers), slog.Duration("fetch_cooldown", cmp.Or(w.cfg.FetchCooldown, river.FetchCooldownDefault)),
		slog.Int("ordered_completions", max(0, cmp.Or(w.cfg.Webhooks.OrderedCompletions, jobs.DefaultOrderedCompletions))),
		slog.Bool("webhook_allow_private", w.cfg.Webhooks.AllowPrivate))
	<-ctx.Done()
	return StopClient(w.client, w.cfg.StopTimeout, w.cfg.Logger)
}

// Ready reports whether the worker reaches the database.
func (w *Worker) Ready(ctx context.Context) error {
	if err := w.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// StopClient stops a River client gracefully, waiting up to timeout for
// running jobs to finish; then it cancels the jobs still running, which
// River puts back in their queue for the next worker.
func StopClient(client *river.Client[pgx.Tx], timeout time.Duration, logger *slog.Logger) error {
	logger.Info("stopping: waiting for running jobs", slog.Duration("timeout", timeout))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Stop(ctx)
	if err == nil {
		logger.Info("stopped")
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stop river client: %w", err)
	}
	logger.Warn("jobs still running after the stop timeout: cancelling them; River puts them back in the queue", slog.Duration("timeout", timeout))
	hardCtx, hardCancel := context.WithTimeout(context.Background(), hardStopTimeout)
	defer hardCancel()
	if err := client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("stop river client after cancelling running jobs: %w", err)
	}
	logger.Info("stopped")
	return nil
}
