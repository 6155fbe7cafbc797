package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/notified/notified/internal/ident"
	"github.com/notified/notified/internal/testdb"
)

// benchSchemaName is a scratch schema name no other test uses, dropped when
// the test ends should a bench leave it.
func benchSchemaName(t *testing.T, db *testdb.DB) string {
	t.Helper()
	name := ident.RandomName("bench_c_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	return name
}

func benchSchemaExists(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	return count(t, db, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name) == 1
}

func TestBenchJSONReportsAVerifiedBurst(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	schema := benchSchemaName(t, db)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--events", "2000", "--routes", "2",
		"--producer-cost-time", "400ms", "--json", "--bench-schema", schema)
	require.Equal(t, 0, code, "stderr: %s", stderr)

	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), "stdout is one JSON document: %s", stdout)
	require.Equal(t, true, res["verified"])
	require.Equal(t, "burst", res["mode"])
	require.Equal(t, float64(2), res["routes"])
	require.Equal(t, float64(2000), res["events"])
	require.Equal(t, schema, res["schema"])
	bridge, ok := res["bridge"].(map[string]any)
	require.True(t, ok, "bridge: %v", res["bridge"])
	require.Equal(t, float64(4000), bridge["jobs"])
	require.Positive(t, bridge["events_per_sec"])
	baseline, ok := res["baseline"].(map[string]any)
	require.True(t, ok, "baseline: %v", res["baseline"])
	require.Equal(t, float64(4000), baseline["jobs"])
	require.Positive(t, res["ratio"])
	pc, ok := res["producer_cost"].(map[string]any)
	require.True(t, ok, "producer_cost: %v", res["producer_cost"])
	require.Positive(t, pc["ratio"])
	require.Positive(t, res["peak_rss_bytes"])
	require.NotContains(t, res, "latency", "latency is the steady mode's")
	require.False(t, benchSchemaExists(t, db, schema), "the scratch schema is dropped")
}

func TestBenchPrintsASummary(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	schema := benchSchemaName(t, db)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--events", "2000", "--routes", "2",
		"--producer-cost-time", "400ms", "--bench-schema", schema)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Empty(t, stderr, "no progress or logs when stderr is not a terminal")

	require.Contains(t, stdout, "notified bench: burst, 2000 events in transactions of 1000, 2 route(s), 1 bridge(s) (batch size ")
	require.Contains(t, stdout, "scratch schema "+schema+"; times from the database's clock at each insert\n")
	require.Regexp(t, `(?m)^bridge \(first commit to last job inserted\) +\d+ events/s +\d+ jobs/s +4000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^baseline \(River InsertManyFast, 1,000 per tx, 1 connection\) +\d+ jobs/s +4000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^baseline \(River InsertManyFast, 1,000 per tx, 2 connections\) +\d+ jobs/s +4000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^bridge / baseline at equal concurrency +\d+\.\d\d +args \d+ bytes \(baseline \d+\)$`, stdout)
	require.Regexp(t, `(?m)^producer cost \(4 connections, single-row inserts, \d+\.\ds each\): notify-only trigger \d+ rows/s, notified's trigger \d+ rows/s, ratio \d+\.\d\d$`, stdout)
	require.Regexp(t, `(?m)^\d+ dispatch transactions \(\d+ events each on average\), \d+ claims skipped as already recorded$`, stdout)
	require.Regexp(t, `(?m)^peak RSS of this process while the bridges ran: \d+\.\d MiB$`, stdout)
	require.Contains(t, stdout, "\nverified: every event has exactly one job per route, no duplicates\n")
	require.NotContains(t, stdout, "commit to jobs inserted", "latency is the steady mode's")
	require.False(t, benchSchemaExists(t, db, schema))
}

func TestBenchSteadySummaryShowsLatency(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--mode", "steady", "--rate", "300", "--duration", "2s",
		"--producers", "2", "--no-baseline", "--no-producer-cost", "--bench-schema", benchSchemaName(t, db))
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Regexp(t, `(?m)^notified bench: steady, 2 producers at 300 events/s for 2s \(\d+ events\), 1 route\(s\)`, stdout)
	require.Regexp(t, `(?m)^commit to jobs inserted: p50 \d+\.\d ms, p90 \d+\.\d ms, p99 \d+\.\d ms, max \d+\.\d ms over \d+ events$`, stdout)
	require.Regexp(t, `(?m)^producers reached \d+ events/s; the bridge kept up \(last jobs \d+ ms after the last commit\)$`, stdout)
	require.NotContains(t, stdout, "baseline")
	require.NotContains(t, stdout, "producer cost")
	require.Contains(t, stdout, "verified: ")
}

func TestBenchRefusals(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	existing := benchSchemaName(t, db)
	testdb.Exec(t, db.Pool, "CREATE SCHEMA "+pgx.Identifier{existing}.Sanitize())
	testdb.Exec(t, db.Pool, "CREATE TABLE "+pgx.Identifier{existing, "precious"}.Sanitize()+" (v int)")
	testdb.Exec(t, db.Pool, "INSERT INTO "+pgx.Identifier{existing, "precious"}.Sanitize()+" VALUES (7)")
	const ownSchema = "bench works in a scratch schema of its own: drop --schema / NOTIFIED_SCHEMA (name it with --bench-schema)"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"mode fast", nil, []string{"bench", "--mode", "fast"}, `mode "fast" is not one of burst, steady, catchup`},
		{"routes 9", nil, []string{"bench", "--routes", "9"}, "routes 9 must be 1 to 8"},
		{"events 0", nil, []string{"bench", "--events", "0"}, "--events 0 must be at least 1"},
		{"producers 0", nil, []string{"bench", "--producers", "0"}, "--producers 0 must be at least 1"},
		{"concurrency -2", nil, []string{"bench", "--concurrency", "-2"}, "--concurrency -2 must be at least 1"},
		{"steady duration 0s", nil, []string{"bench", "--mode", "steady", "--duration", "0s"}, "--duration 0s must be positive"},
		{"steady duration 500ms", nil, []string{"bench", "--mode", "steady", "--duration", "500ms"}, "duration 500ms must be at least 1s"},
		{"producer cost time 0s", nil, []string{"bench", "--producer-cost-time", "0s"}, "--producer-cost-time 0s must be positive"},
		{"ordered keys -1", nil, []string{"bench", "--ordered-keys", "-1"}, "--ordered-keys -1 must be 0 (unordered) or more"},
		{"complete-tx without work", nil, []string{"bench", "--complete-tx"},
			"complete-tx is how the handlers complete their jobs: it needs work (workers in this process)"},
		{"schema before the command", nil, []string{"--schema", "x", "bench"}, ownSchema},
		{"schema after the command", nil, []string{"bench", "--schema", "x"}, ownSchema},
		{"NOTIFIED_SCHEMA", []string{"NOTIFIED_SCHEMA=x"}, []string{"bench"}, ownSchema},
		{"existing bench schema", nil, []string{"bench", "--bench-schema", existing},
			"schema exists: " + existing + "; the bench works only in a schema it creates and drops: name another or drop it"},
		// The library's errors name the scratch schema Schema, which the
		// bench's errors name as its flag.
		{"invalid bench schema", nil, []string{"bench", "--bench-schema", "Bad-Name"},
			`--bench-schema "Bad-Name" is not valid: use letters, digits and underscores, at most 46 characters, not starting with a digit`},
		{"system bench schema", nil, []string{"bench", "--bench-schema", "pg_bench"},
			`--bench-schema "pg_bench" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
		// The global --schema is checked before the bench runs, and named as
		// for every command.
		{"system schema before the command", nil, []string{"--schema", "pg_bench", "bench"},
			`--schema / NOTIFIED_SCHEMA "pg_bench" is a system schema of Postgres (information_schema, pg_*): use a schema of your own, such as notified`},
		{"positional argument", nil, []string{"bench", "extra"}, `bench: unexpected argument "extra": bench takes no arguments`},
		{"positional argument after flags", nil, []string{"bench", "--events", "10", "extra"}, `bench: unexpected argument "extra": bench takes no arguments`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runEnv(t, append(envWithURL(db.URL), tc.env...), tc.args...)
			require.Equal(t, 1, code, "stderr: %s", stderr)
			require.Equal(t, "notified-bridge: "+tc.want+"\n", stderr)
			require.Empty(t, stdout)
		})
	}
	require.Equal(t, 7, count(t, db, "SELECT v FROM "+pgx.Identifier{existing, "precious"}.Sanitize()),
		"the existing schema's table is untouched")
}

func TestBenchWithoutADatabaseSaysHowToGiveOne(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runEnv(t, baseEnv(), "bench", "--events", "10")
	requireUserError(t, stderr, code, "no database: set DATABASE_URL or --database-url")
	require.Empty(t, stdout)
}

// benchProc is a bench running in the background.
type benchProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
}

func startBench(t *testing.T, db *testdb.DB, args ...string) *benchProc {
	t.Helper()
	p := &benchProc{cmd: exec.Command(binary, append([]string{"bench"}, args...)...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = envWithURL(db.URL)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// interruptWhileCommitting waits until the bench has committed events in
// its scratch schema, sends SIGINT and returns the exit code.
func (p *benchProc) interruptWhileCommitting(t *testing.T, db *testdb.DB, schema string) int {
	t.Helper()
	events := pgx.Identifier{schema, "events"}.Sanitize()
	testdb.WaitFor(t, 30*time.Second, func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("bench exited before it was interrupted: %s", p.stderr.String())
		default:
		}
		var n int
		err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM (SELECT 1 FROM "+events+" LIMIT 1) AS e").Scan(&n)
		return err == nil && n > 0, "events committed in " + schema
	})
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("bench did not exit within 30s of SIGINT")
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestBenchInterruptedDropsTheScratchSchema(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	schema := benchSchemaName(t, db)
	p := startBench(t, db, "--events", "2000000", "--no-baseline", "--no-producer-cost", "--bench-schema", schema)
	code := p.interruptWhileCommitting(t, db, schema)
	requireUserError(t, p.stderr.String(), code, "bench interrupted; its scratch schema was dropped")
	require.Equal(t, "notified-bridge: bench interrupted; its scratch schema was dropped\n", p.stderr.String())
	require.Empty(t, p.stdout.String())
	require.False(t, benchSchemaExists(t, db, schema))
}

func TestBenchInterruptedWithKeepKeepsTheSchemaAndSaysSo(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	schema := benchSchemaName(t, db)
	p := startBench(t, db, "--events", "2000000", "--no-baseline", "--no-producer-cost", "--keep", "--bench-schema", schema)
	code := p.interruptWhileCommitting(t, db, schema)
	require.Equal(t, 1, code, "stderr: %s", p.stderr.String())
	require.True(t, benchSchemaExists(t, db, schema), "--keep keeps the schema, also when interrupted")
	require.NotContains(t, p.stderr.String(), "dropped", "the message must not claim a kept schema was dropped")
	require.Contains(t, p.stderr.String(), "bench interrupted")
}

func TestBenchKeepLeavesTheSchemaForPsql(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	schema := benchSchemaName(t, db)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--events", "2000", "--no-baseline", "--no-producer-cost",
		"--keep", "--json", "--bench-schema", schema)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var res struct {
		Verified bool   `json:"verified"`
		Schema   string `json:"schema"`
	}
	require.NoError(t, json.NewDecoder(bytes.NewReader([]byte(stdout))).Decode(&res))
	require.True(t, res.Verified)
	require.Equal(t, schema, res.Schema)
	require.True(t, benchSchemaExists(t, db, schema))
	require.Equal(t, 2000, count(t, db, "SELECT count(*) FROM "+pgx.Identifier{schema, "river_job"}.Sanitize()))
}

func TestBenchWritesProfiles(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	dir := t.TempDir()
	cpu, mem := dir+"/cpu.pprof", dir+"/mem.pprof"
	_, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--events", "2000", "--no-baseline", "--no-producer-cost",
		"--cpuprofile", cpu, "--memprofile", mem, "--bench-schema", benchSchemaName(t, db))
	require.Equal(t, 0, code, "stderr: %s", stderr)
	for _, f := range []string{cpu, mem} {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.Positive(t, fi.Size(), f)
	}

	_, stderr, code = runEnv(t, envWithURL(db.URL), "bench", "--events", "10", "--cpuprofile", dir+"/missing/cpu.pprof")
	requireUserError(t, stderr, code, "--cpuprofile: open "+dir+"/missing/cpu.pprof: no such file or directory")
	require.False(t, strings.Contains(stderr, "goroutine"))
}

func TestBenchOrderedKeysComparesWithTheSameRunUnorderedAndSaysTheOrderIsVerified(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--events", "1000", "--events-per-tx", "250", "--work",
		"--ordered-keys", "100", "--no-baseline", "--no-producer-cost", "--bench-schema", benchSchemaName(t, db))
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Regexp(t, `(?m)^handled \(first commit to last handler completed\) +\d+ events/s +\d+ jobs/s +1000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^bridge, same run unordered +\d+ events/s +\d+ jobs/s +1000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^handled, same run unordered +\d+ events/s +\d+ jobs/s +1000 jobs in \d+\.\d\ds$`, stdout)
	require.Regexp(t, `(?m)^handled ordered / unordered +\d+\.\d\d$`, stdout)
	require.Contains(t, stdout, "\nordered by $.data.user_id % 100: 100 key(s) × 1 route(s) = 100 lanes; 1000 jobs went through a lane\n")
	require.Contains(t, stdout, "\norder verified: 1000 starts checked, no two jobs of a lane ran at once, each lane's jobs started in commit order\n")
	require.Contains(t, stdout, "\nverified: every event has exactly one job per route, no duplicates\n")
}

func TestBenchOrderedKeysJSON(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	stdout, stderr, code := runEnv(t, envWithURL(db.URL), "bench", "--mode", "catchup", "--events", "500", "--producers", "2",
		"--ordered-keys", "1", "--no-baseline", "--no-producer-cost", "--json", "--bench-schema", benchSchemaName(t, db))
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), "stdout is one JSON document: %s", stdout)
	require.Equal(t, float64(1), res["ordered_keys"])
	require.Equal(t, "$.data.user_id % 1", res["ordered_by"])
	require.Equal(t, map[string]any{"lanes": float64(1), "lane_jobs": float64(500), "started": float64(0), "overlaps": float64(0),
		"commit_order_checked": false, "out_of_order": float64(0)}, res["order"])
	require.NotContains(t, res, "order_verified", "without workers the order is not checked")
	require.NotContains(t, res, "handled_unordered", "the comparison is of handled throughput (--work)")
}
