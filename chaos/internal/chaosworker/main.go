// Command chaosworker is the River worker process of the chaos suite
// (docs/chaos.md): a River client on the suite's throwaway cluster that
// works every kind the suite routes to. The handlers of most kinds do
// nothing; the handler of the ordered kind records each attempt in a table
// of the suite, so that the suite can check, at the end, that the jobs of
// one lane ran one at a time and in order, whatever was killed on the way.
//
// The suite builds it once per run and starts it as a subprocess, as it
// does the bridge; it is not meant for anything else. It logs JSON lines
// on stderr: "worker started" once the client works, "worker stopped" after
// a clean stop on SIGTERM (exit 0).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/notified/notified/jobs"
)

// config is the worker's configuration, from flags.
type config struct {
	DatabaseURL  string
	Schema       string
	Kinds        []string // every kind to register
	OrderedKind  string   // the kind whose attempts are recorded
	RunsTable    string   // schema.table of the attempts
	MaxWorkers   int
	RescueAfter  time.Duration
	JobTimeout   time.Duration
	PollInterval time.Duration
}

// validate says what is wrong with c.
func (c config) validate() error {
	switch {
	case c.DatabaseURL == "":
		return errors.New("DatabaseURL is empty: set DATABASE_URL or -database-url")
	case c.OrderedKind == "":
		return errors.New("OrderedKind is empty: name the kind whose attempts are recorded with -ordered-kind")
	case len(c.Kinds) == 0:
		return errors.New("Kinds is empty: list every kind the routes name with -kinds (River's rescuer discards jobs of kinds its leader does not know)")
	case c.RescueAfter < c.JobTimeout:
		return fmt.Errorf("RescueAfter %s must be at least JobTimeout %s", c.RescueAfter, c.JobTimeout)
	}
	return nil
}

func main() {
	var c config
	var kinds, runsTable string
	flag.StringVar(&c.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "database URL (default: $DATABASE_URL)")
	flag.StringVar(&c.Schema, "schema", "notified", "River's schema")
	flag.StringVar(&kinds, "kinds", "", "comma-separated kinds to work; all but -ordered-kind do nothing")
	flag.StringVar(&c.OrderedKind, "ordered-kind", "", "the kind whose attempts are recorded in -runs-table")
	flag.StringVar(&runsTable, "runs-table", "app.lane_runs", "schema.table the attempts of -ordered-kind go to")
	flag.IntVar(&c.MaxWorkers, "max-workers", 8, "River's MaxWorkers of the default queue")
	flag.DurationVar(&c.RescueAfter, "rescue-after", 5*time.Second, "River's RescueStuckJobsAfter")
	flag.DurationVar(&c.JobTimeout, "job-timeout", 3*time.Second, "River's JobTimeout")
	flag.DurationVar(&c.PollInterval, "poll-interval", 500*time.Millisecond, "River's FetchPollInterval")
	flag.Parse()
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.Kinds = append(c.Kinds, k)
		}
	}
	schema, table, ok := strings.Cut(runsTable, ".")
	if !ok {
		schema, table = "public", runsTable
	}
	c.RunsTable = pgx.Identifier{schema, table}.Sanitize()

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, c, log); err != nil {
		log.Error("worker failed", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

// run works jobs until ctx is done, then stops the client, letting the
// jobs that run finish.
func run(ctx context.Context, c config, log *slog.Logger) error {
	if err := c.validate(); err != nil {
		return err
	}
	pcfg, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("parse the database URL: %w", err)
	}
	pcfg.MaxConns = int32(c.MaxWorkers) + 6 // River's producer, notifier, elector and completer
	pcfg.ConnConfig.RuntimeParams["application_name"] = "notified-chaos worker"
	pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("open a pool: %w", err)
	}
	defer pool.Close()

	workers := river.NewWorkers()
	for _, kind := range c.Kinds {
		fn := noop
		if kind == c.OrderedKind {
			fn = recorder(pool, c.RunsTable)
		}
		if err := jobs.HandleFunc(workers, kind, fn); err != nil {
			return err
		}
	}
	riverLog := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		// The suite finds the leader's process by this ID in river_leader.
		ID:                   fmt.Sprintf("%s%d", clientIDPrefix, os.Getpid()),
		Schema:               c.Schema,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.MaxWorkers}},
		Workers:              workers,
		FetchCooldown:        10 * time.Millisecond,
		FetchPollInterval:    c.PollInterval,
		JobTimeout:           c.JobTimeout,
		RescueStuckJobsAfter: c.RescueAfter,
		RetryPolicy:          soonRetry{},
		Logger:               riverLog,
	})
	if err != nil {
		return fmt.Errorf("create the River client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return fmt.Errorf("start the River client: %w", err)
	}
	log.Info("worker started", slog.Int("pid", os.Getpid()), slog.Int("max_workers", c.MaxWorkers))
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop the River client: %w", err)
	}
	log.Info("worker stopped")
	return nil
}

// clientIDPrefix begins the River client ID of every worker, followed by
// its pid.
const clientIDPrefix = "chaosworker-"

// soonRetry retries a failed or rescued job 100 ms later: a killed head
// holds its lane until then.
type soonRetry struct{}

func (soonRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

func noop(context.Context, jobs.Event) (jobs.Result, error) { return jobs.Success(nil), nil }

// The statements of the recording handler; the table name is filled in.
const (
	startRunSQL = `INSERT INTO %s (job_id, event_id, lane, payload_key, attempt, pid, started_at)
		VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp()) RETURNING id`
	finishRunSQL = `UPDATE %s SET finished_at = clock_timestamp() WHERE id = $1`
)

// recorder is the handler of the ordered kind: it records the attempt's
// start in a statement of its own (committed, so a worker killed after it
// leaves the start behind), works for a few random milliseconds, and
// records its finish. A job of odd id records its finish in a transaction
// that also completes the job (jobs.CompleteTx), which releases the next
// job of its lane at its commit; the others leave the completion to
// River's completer.
func recorder(pool *pgxpool.Pool, table string) jobs.HandlerFunc {
	start := fmt.Sprintf(startRunSQL, table)
	finish := fmt.Sprintf(finishRunSQL, table)
	return func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		lane, key, err := laneAndKey(ev)
		if err != nil {
			return jobs.Result{}, err
		}
		var id int64
		if err := pool.QueryRow(ctx, start, ev.Job.ID, ev.ID, lane, key, ev.Job.Attempt, os.Getpid()).Scan(&id); err != nil {
			return jobs.Result{}, fmt.Errorf("record the start of job %d attempt %d: %w", ev.Job.ID, ev.Job.Attempt, err)
		}
		time.Sleep(time.Duration(1+rand.IntN(5)) * time.Millisecond)
		if ev.Job.ID%2 == 1 {
			if err := finishAndComplete(ctx, pool, finish, id, ev); err != nil {
				return jobs.Result{}, err
			}
			return jobs.Success(nil), nil
		}
		if _, err := pool.Exec(ctx, finish, id); err != nil {
			return jobs.Result{}, fmt.Errorf("record the finish of job %d attempt %d: %w", ev.Job.ID, ev.Job.Attempt, err)
		}
		return jobs.Success(nil), nil
	}
}

// finishAndComplete records the finish of run id and completes ev's job in
// one transaction.
func finishAndComplete(ctx context.Context, pool *pgxpool.Pool, finish string, id int64, ev jobs.Event) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin the finish of job %d attempt %d: %w", ev.Job.ID, ev.Job.Attempt, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, finish, id); err != nil {
		return fmt.Errorf("record the finish of job %d attempt %d: %w", ev.Job.ID, ev.Job.Attempt, err)
	}
	if err := jobs.CompleteTx(ctx, tx, ev, nil); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the finish of job %d attempt %d: %w", ev.Job.ID, ev.Job.Attempt, err)
	}
	return nil
}

// laneAndKey returns the job's lane key from its metadata and the key in
// its event's payload ($.payload.key, as JSON text), each nil when absent.
func laneAndKey(ev jobs.Event) (lane, key *string, err error) {
	var meta struct {
		Notified jobs.Source `json:"notified"`
	}
	if err := json.Unmarshal(ev.Job.Metadata, &meta); err != nil {
		return nil, nil, fmt.Errorf("decode the metadata of job %d: %w", ev.Job.ID, err)
	}
	if meta.Notified.Lane != "" {
		lane = &meta.Notified.Lane
	}
	var row struct {
		Payload struct {
			Key json.RawMessage `json:"key"`
		} `json:"payload"`
	}
	if err := ev.Decode(&row); err != nil {
		return nil, nil, err
	}
	if len(row.Payload.Key) > 0 && string(row.Payload.Key) != "null" {
		k := string(row.Payload.Key)
		key = &k
	}
	return lane, key, nil
}
