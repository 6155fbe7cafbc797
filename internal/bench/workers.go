package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/notified/notified/jobs"
)

// The handler kinds of the bench's routes: jobs.Handle takes a kind as a
// type, so there is one type per route, up to MaxRoutes.
type (
	route0 struct{}
	route1 struct{}
	route2 struct{}
	route3 struct{}
	route4 struct{}
	route5 struct{}
	route6 struct{}
	route7 struct{}
)

func (route0) Kind() string { return routeKind(0) }
func (route1) Kind() string { return routeKind(1) }
func (route2) Kind() string { return routeKind(2) }
func (route3) Kind() string { return routeKind(3) }
func (route4) Kind() string { return routeKind(4) }
func (route5) Kind() string { return routeKind(5) }
func (route6) Kind() string { return routeKind(6) }
func (route7) Kind() string { return routeKind(7) }

// workers is an in-process River client working the bench's jobs.
type workers struct {
	client *river.Client[pgx.Tx]
	pool   *pgxpool.Pool
	txPool *pgxpool.Pool // the handlers' own transactions (CompleteTx), or nil
}

// startWorkers starts River workers with a no-op handler per route, which
// count the jobs they handle.
func (r *runner) startWorkers(ctx context.Context) (*workers, error) {
	ws := river.NewWorkers()
	// With ordered keys the handlers of every phase check the order of
	// each lane (see orderCheck), so that both phases do the same work.
	order := r.order
	// With CompleteTx, each handler completes its job in a transaction of
	// its own, on a pool of its own as an application's would be.
	var txPool *pgxpool.Pool
	handle := func(ctx context.Context, ev jobs.Event) (jobs.Result, error) {
		done := func() {}
		if order != nil {
			var err error
			if done, err = order.start(ev); err != nil {
				return jobs.Result{}, err
			}
		}
		if txPool != nil {
			// The lane's next job may start at the commit: this one is
			// done before.
			err := completeTx(ctx, txPool, ev, done)
			if err != nil {
				return jobs.Result{}, err
			}
		} else {
			done()
		}
		r.handled.Add(1)
		return jobs.Success(nil), nil
	}
	register := []func(*river.Workers, jobs.HandlerFunc) error{
		jobs.Handle[route0], jobs.Handle[route1], jobs.Handle[route2], jobs.Handle[route3],
		jobs.Handle[route4], jobs.Handle[route5], jobs.Handle[route6], jobs.Handle[route7],
	}
	for _, reg := range register[:MaxRoutes] {
		if err := reg(ws, handle); err != nil {
			return nil, err
		}
	}
	if r.o.Webhook {
		// The webhook phase's jobs, in the same queue: the receiver counts
		// them as handled.
		if err := registerWebhooks(ws); err != nil {
			return nil, err
		}
	}
	if r.o.CompleteTx {
		var err error
		if txPool, err = r.newPool(ctx, 16, "handler"); err != nil {
			return nil, err
		}
	}
	pool, err := r.newPool(ctx, 8, "worker")
	if err != nil {
		closePool(txPool)
		return nil, err
	}
	client, err := river.NewClient(riverDriver(pool), &river.Config{
		Schema:  r.s.schema,
		Workers: ws,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 200}},
		Logger:  r.o.Logger,
		// Fetch soon after jobs are announced, as a busy worker would.
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		pool.Close()
		closePool(txPool)
		return nil, fmt.Errorf("river client for the workers: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		pool.Close()
		closePool(txPool)
		return nil, fmt.Errorf("start the workers: %w", err)
	}
	return &workers{client: client, pool: pool, txPool: txPool}, nil
}

// completeTx completes ev's job in a transaction on pool, calling done
// before the commit.
func completeTx(ctx context.Context, pool *pgxpool.Pool, ev jobs.Event, done func()) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		done()
		return fmt.Errorf("begin the handler's transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	err = jobs.CompleteTx(ctx, tx, ev, nil)
	done()
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit the handler's transaction: %w", err)
	}
	return nil
}

// closePool closes pool, if any.
func closePool(pool *pgxpool.Pool) {
	if pool != nil {
		pool.Close()
	}
}

func (w *workers) stop(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.client.Stop(sctx); err != nil {
		_ = w.client.StopAndCancel(ctx)
	}
	w.pool.Close()
	closePool(w.txPool)
}

// waitHandled waits until the workers' completions of n jobs are recorded.
func (r *runner) waitHandled(ctx context.Context, n int, rss *rssMeter) error {
	start := time.Now()
	lastProgress, last := time.Now(), -1
	for {
		// The handlers' own count costs the database nothing; once it is
		// reached, the completions are counted where they are recorded.
		done := int(r.handled.Load())
		if done >= n {
			if err := r.s.pool.QueryRow(ctx, r.s.sql(completedJobsSQL)).Scan(&done); err != nil {
				return fmt.Errorf("count the handled jobs: %w", err)
			}
		}
		rss.sample()
		ev, jb := r.dispatched()
		r.progress(Progress{Phase: r.phase("handlers finishing"), Elapsed: time.Since(start), Target: n, Committed: r.committed.Load(),
			Dispatched: ev, Jobs: jb, Handled: int64(done), RSSBytes: rss.now})
		if done >= n {
			return nil
		}
		if done != last {
			lastProgress, last = time.Now(), done
		} else if time.Since(lastProgress) > stallTimeout {
			return fmt.Errorf("the workers completed %d of %d jobs and then nothing for %s", done, n, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
