package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/notified/notified/jobs"
	"github.com/notified/notified/trigger"
)

// newPool opens a pool of its own, like the one the bench was given, with
// at most n connections, for what (named in errors).
func (r *runner) newPool(ctx context.Context, n int, what string) (*pgxpool.Pool, error) {
	cfg := r.pool.Config().Copy()
	cfg.MaxConns = int32(n)
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s pool: %w", what, err)
	}
	return pool, nil
}

// bulk commits n events, o.EventsPerTx per transaction, from o.Producers
// connections at once. With a phase name it reports progress itself.
func (r *runner) bulk(ctx context.Context, n int, phase string) error {
	pool, err := r.newPool(ctx, r.o.Producers, "producer")
	if err != nil {
		return err
	}
	defer pool.Close()
	perTx := r.o.EventsPerTx
	insert := r.s.sql(insertEventsSQL)
	var next atomic.Int64
	errs := make(chan error, r.o.Producers)
	var wg sync.WaitGroup
	stopProgress := r.reportWhile(ctx, phase, n)
	for range r.o.Producers {
		wg.Go(func() {
			for {
				from := int(next.Add(int64(perTx))) - perTx
				if from >= n {
					return
				}
				to := min(from+perTx, n)
				if _, err := pool.Exec(ctx, insert, eventName, from+1, to); err != nil {
					errs <- fmt.Errorf("commit events %d to %d: %w", from+1, to, err)
					return
				}
				r.committed.Add(int64(to - from))
				if err := r.noteFirstCommit(ctx, pool); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	stopProgress()
	close(errs)
	return <-errs
}

// reportWhile reports the committed count every 200ms until the returned
// function is called; with no phase it does nothing.
func (r *runner) reportWhile(ctx context.Context, phase string, target int) func() {
	if phase == "" || r.o.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			r.progress(Progress{Phase: phase, Elapsed: time.Since(start), Target: target, Committed: r.committed.Load()})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// steady has o.Producers producers commit one event per transaction, at
// o.Rate events/s in all, for o.Duration. A producer that falls behind its
// schedule by more than a second skips ahead rather than bursting.
func (r *runner) steady(ctx context.Context) error {
	pool, err := r.newPool(ctx, r.o.Producers, "producer")
	if err != nil {
		return err
	}
	defer pool.Close()
	insert := r.s.sql(insertEventSQL)
	interval := time.Duration(float64(time.Second) * float64(r.o.Producers) / float64(r.o.Rate))
	start := time.Now()
	end := start.Add(r.o.Duration)
	var seq atomic.Int64
	errs := make(chan error, r.o.Producers)
	var wg sync.WaitGroup
	for p := range r.o.Producers {
		wg.Go(func() {
			next := start.Add(interval * time.Duration(p) / time.Duration(r.o.Producers))
			for next.Before(end) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				if _, err := pool.Exec(ctx, insert, eventName, int(seq.Add(1))); err != nil {
					errs <- fmt.Errorf("commit an event: %w", err)
					return
				}
				r.committed.Add(1)
				next = next.Add(interval)
				if behind := time.Since(next); behind > time.Second {
					next = next.Add(behind.Truncate(interval))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// latency reads the distribution of commit → jobs inserted over the steady
// run's events, and whether the bridge kept up.
func (r *runner) latency(ctx context.Context) (*Latency, error) {
	l, err := r.distribution(ctx, jobLatenciesSQL, routeKind(0))
	if err != nil {
		return nil, fmt.Errorf("read latencies: %w", err)
	}
	err = r.s.pool.QueryRow(ctx, r.s.sql(drainSQL)).Scan(&l.DrainedAfter, &l.Produced)
	if err != nil {
		return nil, fmt.Errorf("read the drain time: %w", err)
	}
	l.KeptUp = l.DrainedAfter <= 1000
	return l, nil
}

// handledLatency reads the distribution of commit → first handler
// completed, once every job's completion is recorded.
func (r *runner) handledLatency(ctx context.Context) (*Latency, error) {
	l, err := r.distribution(ctx, handledLatenciesSQL, routeKind(0))
	if err != nil {
		return nil, fmt.Errorf("read latencies to completion: %w", err)
	}
	return l, nil
}

// distribution reads the distribution of latencies (jobLatenciesSQL or
// handledLatenciesSQL) with its arguments args.
func (r *runner) distribution(ctx context.Context, latencies string, args ...any) (*Latency, error) {
	l := &Latency{}
	var p []float64
	err := r.s.pool.QueryRow(ctx, r.s.sql(distributionOf(latencies)), args...).Scan(&l.Events, &p, &l.Max)
	if err != nil {
		return nil, err
	}
	l.P50, l.P90, l.P99 = p[0], p[1], p[2]
	return l, nil
}

// producerCost measures single-row inserts from o.Producers connections
// into two tables like the events table, one with notified's capture
// trigger and one with a notify-only trigger like the Python listener's,
// in alternating rounds so that both see the same conditions.
func (r *runner) producerCost(ctx context.Context) (*ProducerCost, error) {
	channel := r.s.channel + "_cost"
	for _, t := range []string{costNotifyOnly, costNotified} {
		if _, err := r.s.pool.Exec(ctx, r.s.sql(costSQL(createCostTableSQL, t))); err != nil {
			return nil, fmt.Errorf("create a producer cost table: %w", err)
		}
	}
	_, err := r.s.pool.Exec(ctx, r.s.sql(notifyOnlySQL(channel)))
	if err != nil {
		return nil, fmt.Errorf("create the notify-only trigger: %w", err)
	}
	if _, err := trigger.Install(ctx, r.s.pool, trigger.Options{Schema: r.s.schema, Table: r.s.schema + "." + costNotified, Channel: channel}); err != nil {
		return nil, err
	}
	pool, err := r.newPool(ctx, r.o.costProducers, "producer")
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	const rounds = 6
	each := r.o.ProducerCostTime / rounds
	pc := &ProducerCost{Producers: r.o.costProducers}
	var secs [2]float64
	var rows [2]int
	start := time.Now()
	for round := range rounds {
		for i, t := range []string{costNotifyOnly, costNotified} {
			phase := "producer cost: notify-only trigger"
			if i == 1 {
				phase = "producer cost: notified's trigger"
			}
			r.progress(Progress{Phase: phase, Elapsed: time.Since(start), Target: round + 1})
			n, s, err := r.singleRows(ctx, pool, t, each)
			if err != nil {
				return nil, err
			}
			rows[i] += n
			secs[i] += s
		}
	}
	pc.NotifyOnlyRow, pc.NotifiedRows = rows[0], rows[1]
	pc.SecondsEach = secs[0]
	if secs[0] > 0 && secs[1] > 0 {
		pc.NotifyOnly, pc.Notified = float64(rows[0])/secs[0], float64(rows[1])/secs[1]
		pc.Ratio = pc.Notified / pc.NotifyOnly
	}
	if _, err := r.s.pool.Exec(ctx, r.s.sql(dropCostTablesSQL)); err != nil {
		return nil, fmt.Errorf("drop the producer cost tables: %w", err)
	}
	if _, err := r.s.pool.Exec(ctx, r.s.sql(emptyOutboxSQL), channel); err != nil {
		return nil, fmt.Errorf("empty the producer cost tables' outbox: %w", err)
	}
	return pc, nil
}

// singleRows has every connection of pool insert one row per transaction
// into the producer cost table named table for d, and returns the rows and
// the seconds they took by the database's clock.
func (r *runner) singleRows(ctx context.Context, pool *pgxpool.Pool, table string, d time.Duration) (int, float64, error) {
	var from string
	if err := pool.QueryRow(ctx, clockSQL).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("read the database's clock: %w", err)
	}
	insert := r.s.sql(costSQL(insertCostRowSQL, table))
	end := time.Now().Add(d)
	var count atomic.Int64
	producers := int(pool.Config().MaxConns)
	errs := make(chan error, producers)
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for time.Now().Before(end) {
				if _, err := pool.Exec(ctx, insert, eventName, int(count.Add(1))); err != nil {
					errs <- fmt.Errorf("insert into %s: %w", r.s.ident(table), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	var n int
	var secs float64
	err := pool.QueryRow(ctx, r.s.sql(costSQL(countCostRowsSQL, table)), from).Scan(&n, &secs)
	if err != nil {
		return 0, 0, fmt.Errorf("count the rows in %s: %w", r.s.ident(table), err)
	}
	return n, secs, nil
}

func riverDriver(pool *pgxpool.Pool) *riverpgxv5.Driver { return riverpgxv5.New(pool) }

// baselineArgs are args of the bridge's shape for the baseline.
type baselineArgs struct {
	kind string
	jobs.Payload
}

func (a baselineArgs) Kind() string { return a.kind }

// baselineParams are the insert parameters of event i's job for a route,
// with the args and metadata the bridge would give it: the event row as
// row_to_json prints it.
func baselineParams(i, route int, channel string) river.InsertManyParams {
	id := strconv.Itoa(i)
	data := json.RawMessage(`{"id":` + id + `,"name":"` + eventName + `","data":{"plan": "pro", "email": "user` + id +
		`@example.com", "amount": 42.50, "user_id": ` + id + `},"created_at":"2026-11-27T15:04:05.123456+00:00"}`)
	meta, _ := json.Marshal(map[string]jobs.Source{jobs.MetadataKey: {EventID: id, EventName: eventName, Channel: channel}})
	return river.InsertManyParams{
		Args:       baselineArgs{kind: routeKind(route), Payload: jobs.Payload{EventID: id, EventName: eventName, Channel: channel, Data: data}},
		InsertOpts: &river.InsertOpts{Metadata: meta},
	}
}
