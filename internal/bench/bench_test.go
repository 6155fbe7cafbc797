package bench_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/bench"
	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
)

// runTimeout bounds one bench run in these tests; the runs are small.
const runTimeout = 90 * time.Second

// scratchName is a scratch schema name no other test uses.
func scratchName() string { return ident.RandomName("bench_t_") }

func schemaExists(t *testing.T, pool *pgxpool.Pool, schema string) bool {
	t.Helper()
	return testdb.Count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) == 1
}

// dropOnCleanup drops schema when the test ends, should a run leave it.
func dropOnCleanup(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop %s: %v", schema, err)
		}
	})
}

// run runs the bench with a deadline and the schema dropped at the end of
// the test in any case.
func run(t *testing.T, pool *pgxpool.Pool, o bench.Options) (*bench.Result, error) {
	t.Helper()
	if o.Schema != "" {
		dropOnCleanup(t, pool, o.Schema)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	return bench.Run(ctx, pool, o)
}

// phases records the phases Progress reports, in order, without repeats.
type phases struct {
	mu   sync.Mutex
	seen []string
	all  []bench.Progress
}

func (p *phases) record(pr bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, pr)
	if len(p.seen) == 0 || p.seen[len(p.seen)-1] != pr.Phase {
		p.seen = append(p.seen, pr.Phase)
	}
}

func (p *phases) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

func (p *phases) of(phase string) []bench.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []bench.Progress
	for _, pr := range p.all {
		if pr.Phase == phase {
			out = append(out, pr)
		}
	}
	return out
}

func TestBenchBurstWithTwoRoutesAndTwoBridgesVerifiesComparesAndDropsTheSchema(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	const events = 2500
	res, err := run(t, pool, bench.Options{Events: events, Routes: 2, Bridges: 2,
		ProducerCostTime: 450 * time.Millisecond, Schema: schema})
	require.NoError(t, err)

	require.True(t, res.Verified)
	require.Equal(t, bench.Burst, res.Mode)
	require.Equal(t, schema, res.Schema)
	require.Equal(t, events, res.Events)
	require.Equal(t, 2, res.Routes)
	require.Equal(t, 2, res.Bridges)
	require.Equal(t, 1, res.Producers, "burst defaults to one producer")
	require.Equal(t, "statement", res.Clock, "the test server does not track commit timestamps")

	require.Equal(t, events, res.Bridge.Events)
	require.Equal(t, events*2, res.Bridge.Jobs)
	require.Positive(t, res.Bridge.Seconds)
	require.Positive(t, res.Bridge.EventsPerSec)
	require.InDelta(t, 2*res.Bridge.EventsPerSec, res.Bridge.JobsPerSec, 1e-6*res.Bridge.JobsPerSec)

	require.NotNil(t, res.Baseline)
	require.Equal(t, events*2, res.Baseline.Jobs)
	require.Positive(t, res.Baseline.Seconds)
	require.Positive(t, res.Baseline.JobsPerSec)
	require.Positive(t, res.Ratio)
	require.InDelta(t, res.Bridge.JobsPerSec/res.Baseline.JobsPerSec, res.Ratio, 1e-9)
	require.Positive(t, res.ArgsBytes)
	require.InEpsilon(t, res.Baseline.ArgsBytes, res.ArgsBytes, 0.05,
		"the baseline's args (%d bytes) should be the size of the bridge's (%d bytes)", res.Baseline.ArgsBytes, res.ArgsBytes)

	require.Positive(t, res.Batches, "at least one dispatch transaction")
	require.LessOrEqual(t, res.Batches, int64(2500), "no more transactions than events")
	require.GreaterOrEqual(t, res.SkippedClaims, int64(0))

	require.NotNil(t, res.ProducerCost)
	require.Equal(t, 4, res.ProducerCost.Producers, "the producer cost is measured with 4 connections unless Producers is set")
	require.Positive(t, res.ProducerCost.NotifyOnly)
	require.Positive(t, res.ProducerCost.Notified)
	require.Positive(t, res.ProducerCost.Ratio)
	require.Positive(t, res.ProducerCost.NotifyOnlyRow)
	require.Positive(t, res.ProducerCost.NotifiedRows)

	require.Nil(t, res.Latency, "latency is the steady mode's")
	require.Nil(t, res.Handled, "handled is measured with Work only")
	if runtime.GOOS == "linux" {
		require.Positive(t, res.PeakRSSBytes)
	}
	require.False(t, schemaExists(t, pool, schema), "the scratch schema is dropped")
}

func TestBenchSteadyMeasuresCommitToJobLatencyAndKeepsUp(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	res, err := run(t, pool, bench.Options{Mode: bench.Steady, Rate: 400, Duration: 2 * time.Second, Producers: 2,
		NoProducerCost: true, Schema: schema})
	require.NoError(t, err)

	require.True(t, res.Verified)
	require.Equal(t, bench.Steady, res.Mode)
	require.Equal(t, 400, res.Rate)
	require.Equal(t, 2*time.Second, res.Duration)
	require.Equal(t, 2, res.Producers)
	l := res.Latency
	require.NotNil(t, l)
	require.Positive(t, res.Events)
	require.Equal(t, res.Events, l.Events, "one latency per committed event")
	require.Equal(t, res.Events, res.Bridge.Events)
	require.LessOrEqual(t, res.Events, 800, "at most rate × duration events")
	require.Positive(t, l.P50)
	require.LessOrEqual(t, l.P50, l.P90)
	require.LessOrEqual(t, l.P90, l.P99)
	require.LessOrEqual(t, l.P99, l.Max)
	require.True(t, l.KeptUp, "drained %.0f ms after the last commit", l.DrainedAfter)
	require.LessOrEqual(t, l.DrainedAfter, 1000.0)
	require.Positive(t, l.Produced)
	require.Nil(t, res.HandledLatency, "handled latency is measured with Work only")
	require.NotNil(t, res.Baseline)
	require.Equal(t, 800, res.Baseline.Jobs, "the baseline inserts rate × duration jobs")
	require.Zero(t, res.Ratio, "a steady run has no ratio: its rate is the producers'")
	require.False(t, schemaExists(t, pool, schema))
}

func TestBenchCatchupWithWorkHandlesEveryJobAfterTheBridgeInsertedIt(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	const events = 2000
	res, err := run(t, pool, bench.Options{Mode: bench.Catchup, Events: events, Routes: 2, Work: true,
		NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.NoError(t, err)

	require.True(t, res.Verified)
	require.True(t, res.Work)
	require.Nil(t, res.Baseline)
	require.Zero(t, res.Ratio, "no ratio without a baseline")
	require.Nil(t, res.ProducerCost)
	require.Equal(t, events*2, res.Bridge.Jobs)
	require.Positive(t, res.Bridge.Seconds)
	h := res.Handled
	require.NotNil(t, h)
	require.Equal(t, events, h.Events)
	require.Equal(t, events*2, h.Jobs)
	require.Positive(t, h.JobsPerSec)
	// Both are measured from the bridges' start; a job is handled after
	// the statement that inserted it ended.
	require.GreaterOrEqual(t, h.Seconds, res.Bridge.Seconds)
	require.False(t, schemaExists(t, pool, schema))
}

func TestBenchSteadyWithWorkMeasuresHandledLatencyNoShorterThanInsertLatency(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	res, err := run(t, pool, bench.Options{Mode: bench.Steady, Rate: 300, Duration: 2 * time.Second, Producers: 2,
		Work: true, NoBaseline: true, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)

	require.True(t, res.Verified)
	require.NotNil(t, res.Latency)
	hl := res.HandledLatency
	require.NotNil(t, hl)
	require.Equal(t, res.Events, hl.Events, "one handled latency per event (the first route's job)")
	require.GreaterOrEqual(t, hl.P50, res.Latency.P50)
	require.LessOrEqual(t, hl.P50, hl.P90)
	require.LessOrEqual(t, hl.P90, hl.P99)
	require.LessOrEqual(t, hl.P99, hl.Max)
	require.NotNil(t, res.Handled)
	require.Equal(t, res.Events, res.Handled.Jobs)
}

func TestBenchKeepLeavesTheScratchSchemaWithItsJobs(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	const events = 2000
	res, err := run(t, pool, bench.Options{Events: events, Routes: 3, Keep: true, NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.NoError(t, err)
	require.True(t, res.Verified)

	require.True(t, schemaExists(t, pool, schema), "Keep leaves the schema")
	require.Equal(t, events, testdb.Count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "events"}.Sanitize()))
	require.Equal(t, events*3, testdb.Count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "river_job"}.Sanitize()))
	require.Equal(t, 3, testdb.Count(t, pool, "SELECT count(DISTINCT kind) FROM "+pgx.Identifier{schema, "river_job"}.Sanitize()))
}

func TestBenchDefaultSchemaIsNamedNotifiedBenchAndDropped(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	res, err := bench.Run(ctx, pool, bench.Options{Events: 2000, NoBaseline: true, NoProducerCost: true})
	require.NoError(t, err)
	require.Regexp(t, `^notified_bench_[0-9a-f]{8}$`, res.Schema)
	dropOnCleanup(t, pool, res.Schema)
	require.True(t, res.Verified)
	require.Equal(t, 1, res.Routes)
	require.Equal(t, 2000, res.Bridge.Jobs)
	require.False(t, schemaExists(t, pool, res.Schema))
}

func TestBenchRunRefusesASchemaThatExistsAndLeavesItsTables(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	dropOnCleanup(t, pool, schema)
	table := pgx.Identifier{schema, "precious"}.Sanitize()
	testdb.Exec(t, pool, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	testdb.Exec(t, pool, "CREATE TABLE "+table+" (v text)")
	testdb.Exec(t, pool, "INSERT INTO "+table+" VALUES ('keep me')")

	res, err := run(t, pool, bench.Options{Events: 2000, NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.Nil(t, res)
	require.ErrorIs(t, err, bench.ErrSchemaExists)
	require.EqualError(t, err, "schema exists: "+schema+"; the bench works only in a schema it creates and drops: name another or drop it")

	require.True(t, schemaExists(t, pool, schema))
	var v string
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT v FROM "+table).Scan(&v))
	require.Equal(t, "keep me", v)
	require.Equal(t, 1, testdb.Count(t, pool, "SELECT count(*) FROM "+table))
	require.Equal(t, 1, testdb.Count(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema),
		"the bench created nothing in the schema")
}

func TestBenchCancelledDuringAPhaseDropsTheSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   bench.Options
		cancel func(bench.Progress) bool // cancel on this progress report
		err    string                    // the error's text, or a part of it
	}{
		{"burst", bench.Options{Events: 300_000, NoBaseline: true, NoProducerCost: true},
			func(p bench.Progress) bool { return p.Phase == "burst" && p.Committed > 0 }, "context canceled"},
		{"catchup committing", bench.Options{Mode: bench.Catchup, Events: 300_000, Producers: 2, NoBaseline: true, NoProducerCost: true},
			func(p bench.Progress) bool { return p.Phase == "catchup: committing" && p.Committed > 0 }, "context canceled"},
		{"baseline", bench.Options{Events: 200_000, NoProducerCost: true},
			func(p bench.Progress) bool { return strings.HasPrefix(p.Phase, "baseline") }, "baseline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool := testdb.New(t).Pool
			schema := scratchName()
			dropOnCleanup(t, pool, schema)
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			var once sync.Once
			var sawSchema bool
			o := tc.opts
			o.Schema = schema
			o.Progress = func(p bench.Progress) {
				if tc.cancel(p) {
					once.Do(func() {
						sawSchema = schemaExists(t, pool, schema)
						cancel()
					})
				}
			}
			res, err := bench.Run(ctx, pool, o)
			require.Nil(t, res)
			require.ErrorIs(t, err, context.Canceled)
			require.Contains(t, err.Error(), tc.err)
			require.True(t, sawSchema, "the schema existed while the bench ran")
			require.False(t, schemaExists(t, pool, schema), "the scratch schema is dropped after a cancel")
		})
	}
}

func TestBenchCancelledContextCreatesNoSchema(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	dropOnCleanup(t, pool, schema)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := bench.Run(ctx, pool, bench.Options{Events: 2000, Schema: schema})
	require.Nil(t, res)
	require.ErrorIs(t, err, context.Canceled)
	require.EqualError(t, err, "look for schema "+schema+": context canceled")
	require.False(t, schemaExists(t, pool, schema))
}

func TestBenchInvalidOptionsAreRefusedWithoutCreatingASchema(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	for _, tc := range []struct {
		name string
		o    bench.Options
		want string
	}{
		{"mode fast", bench.Options{Mode: "fast"}, `mode "fast" is not one of burst, steady, catchup`},
		{"routes 9", bench.Options{Routes: 9}, "routes 9 must be 1 to 8"},
		{"routes -1", bench.Options{Routes: -1}, "routes -1 must be 1 to 8"},
		{"events -1", bench.Options{Events: -1}, "events -1 must be at least 1"},
		{"rate -1", bench.Options{Mode: bench.Steady, Rate: -1}, "rate -1 must be at least 1 event/s"},
		{"producers 65", bench.Options{Producers: 65}, "producers 65 must be 1 to 64"},
		{"producers -1", bench.Options{Producers: -1}, "producers -1 must be 1 to 64"},
		{"duration 500ms", bench.Options{Mode: bench.Steady, Duration: 500 * time.Millisecond}, "duration 500ms must be at least 1s"},
		{"bridges 17", bench.Options{Bridges: 17}, "bridges 17 must be 1 to 16"},
		{"bridges -1", bench.Options{Bridges: -1}, "bridges -1 must be 1 to 16"},
		{"batch size -1", bench.Options{BatchSize: -1}, "batch size -1 must be at least 1"},
		{"concurrency -1", bench.Options{Concurrency: -1}, "concurrency -1 must be at least 1"},
		{"producer cost time -1s", bench.Options{ProducerCostTime: -time.Second}, "producer cost time -1s must be positive"},
		{"ordered keys -1", bench.Options{OrderedKeys: -1}, "ordered keys -1 must be 0 (unordered) or more"},
		{"webhook without work", bench.Options{Webhook: true}, "webhook measures deliveries: it needs work (workers in this process)"},
		{"complete-tx without work", bench.Options{CompleteTx: true},
			"complete-tx is how the handlers complete their jobs: it needs work (workers in this process)"},
		{"complete-tx and webhook", bench.Options{CompleteTx: true, Webhook: true, Work: true},
			"complete-tx and webhook measure one thing at a time: give one of them"},
		{"webhook and ordered keys", bench.Options{Webhook: true, Work: true, OrderedKeys: 3},
			"webhook and ordered keys measure one thing at a time: give one of them"},
		{"webhook steady", bench.Options{Webhook: true, Work: true, Mode: bench.Steady}, "webhook measures a burst or a catch-up, not the steady mode"},
		{"schema Bad-Name", bench.Options{Schema: "Bad-Name"},
			`Schema "Bad-Name" is not valid: use letters, digits and underscores, at most 46 characters, not starting with a digit`},
		{"schema too long", bench.Options{Schema: strings.Repeat("b", 47)},
			`Schema "` + strings.Repeat("b", 47) + `" is not valid: use letters, digits and underscores, at most 46 characters, not starting with a digit`},
		{"system schema", bench.Options{Schema: "pg_bench"},
			`Schema "pg_bench" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if o.Schema == "" {
				o.Schema = scratchName()
			}
			res, err := run(t, pool, o)
			require.Nil(t, res)
			require.EqualError(t, err, tc.want)
			require.False(t, errors.Is(err, bench.ErrSchemaExists))
			require.False(t, schemaExists(t, pool, o.Schema), "no schema is created for invalid options")
		})
	}
}

func TestBenchProgressReportsTheProducerCostBaselineAndModePhases(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	var p phases
	res, err := run(t, pool, bench.Options{Mode: bench.Catchup, Events: 2000, ProducerCostTime: 300 * time.Millisecond,
		Schema: scratchName(), Progress: p.record})
	require.NoError(t, err)
	require.True(t, res.Verified)

	var want []string
	for range 6 { // rounds of alternating triggers
		want = append(want, "producer cost: notify-only trigger", "producer cost: notified's trigger")
	}
	want = append(want, "baseline: warming up", "baseline: River InsertManyFast on 1 connection(s)",
		"baseline: River InsertManyFast on 2 connection(s)", "catchup: committing", "catchup: draining")
	require.Equal(t, want, p.list())

	for _, phase := range want[13:15] {
		baseline := p.of(phase)
		require.NotEmpty(t, baseline)
		last := baseline[len(baseline)-1]
		require.Equal(t, 2000, last.Target)
		require.Equal(t, int64(2000), last.Jobs, "the baseline's last report counts every job")
	}

	draining := p.of("catchup: draining")
	require.NotEmpty(t, draining)
	end := draining[len(draining)-1]
	require.Equal(t, 2000, end.Target)
	require.Equal(t, int64(2000), end.Committed)
	require.Equal(t, int64(2000), end.Dispatched)
	require.Equal(t, int64(2000), end.Jobs)
	if runtime.GOOS == "linux" {
		require.Positive(t, end.RSSBytes)
	}
}

func TestBenchProgressReportsBurstAndHandlersFinishingWithWork(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	var p phases
	res, err := run(t, pool, bench.Options{Events: 2000, Work: true, NoBaseline: true, NoProducerCost: true,
		Schema: scratchName(), Progress: p.record})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Equal(t, []string{"burst", "handlers finishing"}, p.list())
	fin := p.of("handlers finishing")
	require.Equal(t, int64(2000), fin[len(fin)-1].Handled)
}

// The baseline is documented as 1,000 jobs per transaction; with a number
// of routes that does not divide 1,000 the batch must not grow past it.
func TestBenchBaselineInsertsAtMostAThousandJobsPerTransaction(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	var p phases
	res, err := run(t, pool, bench.Options{Events: 2000, Routes: 3, NoProducerCost: true,
		Schema: scratchName(), Progress: p.record})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Equal(t, 6000, res.Baseline.Jobs)

	for _, phase := range []string{"baseline: River InsertManyFast on 1 connection(s)", "baseline: River InsertManyFast on 2 connection(s)"} {
		var prev int64
		for _, pr := range p.of(phase) {
			require.LessOrEqual(t, pr.Jobs-prev, int64(1000), "%s: a transaction inserted %d jobs (from %d to %d)", phase, pr.Jobs-prev, prev, pr.Jobs)
			prev = pr.Jobs
		}
		require.Equal(t, int64(6000), prev, phase)
	}
}

// TestBenchCommitsTheBurstInTransactionsOfTheSizeAsked: one transaction of
// every event is a burst of its own shape.
func TestBenchCommitsTheBurstInTransactionsOfTheSizeAsked(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	res, err := run(t, pool, bench.Options{Events: 3000, EventsPerTx: 3000, NoBaseline: true, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Equal(t, 3000, res.EventsPerTx)
	require.Equal(t, 3000, res.Bridge.Events)

	_, err = bench.Run(context.Background(), pool, bench.Options{Events: 10, EventsPerTx: 11, Schema: scratchName()})
	require.EqualError(t, err, "events per transaction 11 must be 1 to the events (10)")
}

// TestBenchWorkComparesWithRiversOwnWorkers: with --work, River's workers
// complete the same jobs inserted straight into River, and the handled
// rate is compared with theirs.
func TestBenchWorkComparesWithRiversOwnWorkers(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	res, err := run(t, pool, bench.Options{Events: 2000, Routes: 2, Work: true, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.NotNil(t, res.HandledBaseline)
	require.Equal(t, 4000, res.HandledBaseline.Jobs)
	require.Positive(t, res.HandledBaseline.JobsPerSec)
	require.InDelta(t, res.Handled.JobsPerSec/res.HandledBaseline.JobsPerSec, res.HandledRatio, 1e-9)
}

// TestBenchBurstIsMeasuredFromTheFirstCommit: by the statement clock an
// event is stamped when it is inserted; a burst of one large transaction
// is measured from its commit, not from its first insert.
func TestBenchBurstIsMeasuredFromTheFirstCommit(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	dropOnCleanup(t, pool, schema)
	res, err := run(t, pool, bench.Options{Events: 20000, EventsPerTx: 20000, Keep: true, NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.NoError(t, err)
	require.Equal(t, "statement", res.Clock)
	var fromFirstInsert float64
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT extract(epoch FROM
		(SELECT max(at) FROM `+pgx.Identifier{schema, "bench_mark"}.Sanitize()+`) -
		(SELECT min(created_at) FROM `+pgx.Identifier{schema, "events"}.Sanitize()+`))::float8`).Scan(&fromFirstInsert))
	require.Positive(t, res.Bridge.Seconds)
	require.Less(t, res.Bridge.Seconds, fromFirstInsert, "measured from the commit, after the transaction's inserts")
}

// TestBenchBaselineRunsAtTheBridgesConcurrency: the ratio is taken against
// River inserting on as many connections as the bridges' dispatch
// transactions, and the one-connection figure is reported beside it.
func TestBenchBaselineRunsAtTheBridgesConcurrency(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	res, err := run(t, pool, bench.Options{Events: 3000, Bridges: 2, Concurrency: 2, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Equal(t, 4, res.Baseline.Connections)
	require.Equal(t, 1, res.BaselineOneConnection.Connections)
	require.Equal(t, 3000, res.BaselineOneConnection.Jobs)
	require.Positive(t, res.BaselineOneConnection.JobsPerSec)
	require.InDelta(t, res.Bridge.JobsPerSec/res.Baseline.JobsPerSec, res.Ratio, 1e-9)
}

func TestBenchRunWorksInAMixedCaseSchema(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := "Bench_T_" + strings.TrimPrefix(scratchName(), "bench_t_")
	res, err := run(t, pool, bench.Options{Events: 2000, NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.False(t, schemaExists(t, pool, schema))
}

// TestBenchFiltersMakeTheSameJobs: with Filters, each route has a filter
// that every event matches, so every event still gets one job per route.
func TestBenchFiltersMakeTheSameJobs(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	schema := scratchName()
	const events = 2000
	res, err := run(t, pool, bench.Options{Events: events, Routes: 5, Filters: true, Keep: true, NoBaseline: true, NoProducerCost: true, Schema: schema})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.True(t, res.Filters)
	require.Equal(t, events*5, testdb.Count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "river_job"}.Sanitize()))
	require.Equal(t, 5, testdb.Count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "notified_route"}.Sanitize()+" WHERE filter_path IS NOT NULL"))
	require.Zero(t, testdb.Count(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "notified_dispatch"}.Sanitize()+" WHERE jobs::text LIKE '%skipped%'"))
}

func TestBenchOrderedKeysWithWorkComparesWithTheSameRunUnorderedAndVerifiesTheOrder(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	var p phases
	// Ten jobs per lane: a lane's next job waits for River to record the
	// completion of the one before, which it does every 250 ms when few
	// completions are waiting, so a lane runs about 4 jobs/s.
	const events, keys = 2000, 200
	res, err := run(t, pool, bench.Options{Events: events, EventsPerTx: 500, OrderedKeys: keys, Work: true,
		NoBaseline: true, NoProducerCost: true, Schema: scratchName(), Progress: p.record})
	require.NoError(t, err)

	require.True(t, res.Verified)
	require.Equal(t, keys, res.OrderedKeys)
	require.Equal(t, "$.data.user_id % 200", res.OrderedBy)
	require.Equal(t, []string{"unordered: burst", "unordered: handlers finishing", "ordered: burst", "ordered: handlers finishing"}, p.list())

	for _, th := range []*bench.Throughput{res.BridgeUnordered, res.HandledUnordered, res.Handled} {
		require.NotNil(t, th)
		require.Equal(t, events, th.Events)
		require.Equal(t, events, th.Jobs)
		require.Positive(t, th.JobsPerSec)
	}
	require.InDelta(t, res.Handled.JobsPerSec/res.HandledUnordered.JobsPerSec, res.OrderedRatio, 1e-9)

	require.True(t, res.OrderVerified)
	o := res.Order
	require.NotNil(t, o)
	require.Equal(t, keys, o.Lanes)
	require.Equal(t, events, o.LaneJobs, "every job of the ordered phase went through a lane")
	require.Equal(t, int64(events), o.Started, "the handlers checked every job of the ordered phase")
	require.True(t, o.CommitOrderChecked, "one producer commits in user_id order")
	require.Zero(t, o.Overlaps)
	require.Zero(t, o.OutOfOrder)
}

// TestBenchOrderedKeysWithCompleteTx: handlers that complete their jobs in
// their own transactions handle every job of a one-key lane, in commit
// order, and the result says how they completed them.
func TestBenchOrderedKeysWithCompleteTx(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	const events = 300
	res, err := run(t, pool, bench.Options{Events: events, OrderedKeys: 1, Work: true, CompleteTx: true,
		NoBaseline: true, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)
	require.True(t, res.CompleteTx)
	require.True(t, res.Verified)
	require.True(t, res.OrderVerified)
	require.Equal(t, int64(events), res.Order.Started)
	require.True(t, res.Order.CommitOrderChecked)
	require.Zero(t, res.Order.Overlaps)
	require.Zero(t, res.Order.OutOfOrder)
}

func TestBenchOrderedKeysWithoutWorkOrdersTheJobsAndChecksNoOrder(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	res, err := run(t, pool, bench.Options{Mode: bench.Catchup, Events: 1000, Routes: 2, Producers: 2, OrderedKeys: 1,
		NoBaseline: true, NoProducerCost: true, Schema: scratchName()})
	require.NoError(t, err)
	require.True(t, res.Verified)
	require.Nil(t, res.HandledUnordered, "the unordered comparison is of handled throughput")
	require.Zero(t, res.OrderedRatio)
	require.NotNil(t, res.Order)
	require.Equal(t, 2, res.Order.Lanes)
	require.Equal(t, 2000, res.Order.LaneJobs)
	require.False(t, res.Order.CommitOrderChecked)
	require.False(t, res.OrderVerified, "no handler ran")
}

func TestBenchWebhookDeliversEveryJobAndComparesWithGoHandlers(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t).Pool
	var p phases
	const events = 2000
	res, err := run(t, pool, bench.Options{Events: events, EventsPerTx: 500, Routes: 2, Webhook: true, Work: true,
		NoBaseline: true, NoProducerCost: true, Schema: scratchName(), Progress: p.record})
	require.NoError(t, err)
	require.True(t, res.Verified, "every event has one job per webhook route")
	require.True(t, res.Webhook)
	require.Equal(t, []string{"Go handlers: burst", "Go handlers: handlers finishing", "webhooks: burst", "webhooks: handlers finishing"}, p.list())
	for _, th := range []*bench.Throughput{res.HandledGo, res.Handled} {
		require.NotNil(t, th)
		require.Equal(t, 2*events, th.Jobs)
		require.Positive(t, th.JobsPerSec)
	}
	require.InDelta(t, res.Handled.JobsPerSec/res.HandledGo.JobsPerSec, res.WebhookRatio, 1e-9)
}
