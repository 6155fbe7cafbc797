package bench

import (
	"strings"

	"github.com/notified/notified/internal/dbtx"
)

// The bench's statements. {schema}. stands for the scratch schema (see
// dbtx.InSchema), which holds River's and notified's tables and the bench's
// own: events, bench_mark, bench_job and the producer cost tables. The
// times the bench reads are written {eventAt}, {jobAt}, {markAt} and
// {handledAt} (see inScratch); every value is a parameter.

// inScratch returns q for the scratch schema, with the times it reads
// written for the clock the server offers (commit: track_commit_timestamp
// is on). Each time stands for a row of a table under a fixed alias:
//
//   - {eventAt}: when events row e was committed;
//   - {jobAt}: when the job of bench_job row bj was inserted;
//   - {markAt}: when the jobs of bench_mark row m were inserted;
//   - {handledAt}: when the job of notified_job row h was completed.
func inScratch(schema string, commit bool, q string) string {
	q = strings.NewReplacer(
		"{eventAt}", committedAt(commit, "e", "created_at"),
		"{jobAt}", committedAt(commit, "bj", "at"),
		"{markAt}", committedAt(commit, "m", "at"),
		"{handledAt}", committedAt(commit, "h", "recorded_at"),
	).Replace(q)
	return dbtx.InSchema(schema, q)
}

// committedAt is SQL for when the row of alias a was committed: its commit
// time where the server tracks it (commit), else the clock its column
// stamped holds.
func committedAt(commit bool, a, stamped string) string {
	if commit {
		return "pg_xact_commit_timestamp(" + a + ".xmin)"
	}
	return a + "." + stamped
}

// Setting up and tearing down the scratch schema.

// schemaExistsSQL returns whether schema $1 exists.
const schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`

// createSchemaSQL creates the scratch schema.
const createSchemaSQL = `CREATE SCHEMA {schema}`

// dropSchemaSQL drops the scratch schema and everything in it, if it
// exists.
const dropSchemaSQL = `DROP SCHEMA IF EXISTS {schema} CASCADE`

// createEventsSQL creates the bench's events table. created_at is the
// insert's own clock, not the transaction's start: a bulk transaction's
// rows are stamped as they are written.
const createEventsSQL = `CREATE TABLE {schema}.events (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name text NOT NULL,
		data jsonb NOT NULL,
		created_at timestamptz NOT NULL DEFAULT clock_timestamp())`

// createMarksSQL creates the marks: bench_mark, with a row per statement
// that inserts jobs (its transaction's id and the database's clock at its
// end), stamped by a trigger on river_job; and bench_job, with a row per
// job and its insert time, whose function stampEachJobSQL puts on river_job.
const createMarksSQL = `
		CREATE TABLE {schema}.bench_mark (xid bigint NOT NULL, at timestamptz NOT NULL);
		CREATE FUNCTION {schema}.bench_mark() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			INSERT INTO {schema}.bench_mark VALUES (pg_current_xact_id()::text::bigint % 4294967296, clock_timestamp());
			RETURN NULL;
		END $fn$;
		CREATE TRIGGER bench_mark AFTER INSERT ON {schema}.river_job FOR EACH STATEMENT EXECUTE FUNCTION {schema}.bench_mark();
		CREATE TABLE {schema}.bench_job (job_id bigint NOT NULL, at timestamptz NOT NULL);
		CREATE FUNCTION {schema}.bench_job() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			INSERT INTO {schema}.bench_job SELECT id, clock_timestamp() FROM inserted;
			RETURN NULL;
		END $fn$`

// commitClockSQL returns whether the server tracks commit timestamps
// (track_commit_timestamp).
const commitClockSQL = `SELECT current_setting('track_commit_timestamp') = 'on'`

// stampEachJobSQL puts the bench_job trigger on river_job: a row in
// bench_job per job inserted.
const stampEachJobSQL = `CREATE TRIGGER bench_job AFTER INSERT ON {schema}.river_job` +
	` REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {schema}.bench_job()`

// resetSQL empties the tables a phase measures.
const resetSQL = `TRUNCATE {schema}.river_job, {schema}.bench_mark, {schema}.bench_job, {schema}.notified_job, ` +
	`{schema}.notified_dispatch, {schema}.notified_outbox, {schema}.events, ` +
	`{schema}.notified_lane, {schema}.notified_lane_job, {schema}.notified_lane_wake, {schema}.notified_lane_event`

// Producing events.

// eventData is SQL for an event's data, from an integer i: a small object
// like a sign-up's.
const eventData = `jsonb_build_object('user_id', i, 'email', 'user' || i || '@example.com', 'plan', 'pro', 'amount', 42.50)`

// insertEventsSQL commits the events named $1 of the users $2 to $3, one
// row each.
const insertEventsSQL = `INSERT INTO {schema}.events (name, data) SELECT $1, ` + eventData + ` FROM generate_series($2::int, $3::int) AS i`

// insertEventSQL commits the event named $1 of the user $2.
const insertEventSQL = `INSERT INTO {schema}.events (name, data) SELECT $1, ` + eventData + ` FROM (SELECT $2::int AS i) AS s`

// The producer cost: {table} stands for a producer cost table's name
// (costNotifyOnly or costNotified; see costSQL).

// The producer cost tables.
const (
	costNotifyOnly = "cost_notify_only" // with a notify-only trigger
	costNotified   = "cost_notified"    // with notified's capture trigger
)

// costSQL returns q for the producer cost table named table.
func costSQL(q, table string) string { return strings.ReplaceAll(q, "{table}", table) }

// createCostTableSQL creates a producer cost table like the events table.
const createCostTableSQL = `CREATE TABLE {schema}.{table} (LIKE {schema}.events INCLUDING ALL)`

// notifyOnlySQL returns the statements that put on cost_notify_only a
// trigger that only sends each new row's id on channel, like the Python
// listener's. A function's body takes no parameters: channel is written
// in it as a quoted literal.
func notifyOnlySQL(channel string) string {
	literal := "'" + strings.ReplaceAll(channel, "'", "''") + "'"
	return `CREATE FUNCTION {schema}.cost_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			PERFORM pg_notify(` + literal + `, NEW.id::text);
			RETURN NULL;
		END $fn$;
		CREATE TRIGGER cost_notify AFTER INSERT ON {schema}.` + costNotifyOnly + ` FOR EACH ROW EXECUTE FUNCTION {schema}.cost_notify()`
}

// insertCostRowSQL inserts into a producer cost table the event named $1
// of the user $2.
const insertCostRowSQL = `INSERT INTO {schema}.{table} (name, data) SELECT $1, ` + eventData + ` FROM (SELECT $2::int AS i) AS s`

// countCostRowsSQL counts the rows of a producer cost table created at or
// after $1, and returns the seconds from $1 to now by the database's clock.
const countCostRowsSQL = `SELECT count(*), extract(epoch FROM clock_timestamp() - $1::timestamptz)::float8 FROM {schema}.{table}` +
	` WHERE created_at >= $1::timestamptz`

// dropCostTablesSQL drops both producer cost tables.
const dropCostTablesSQL = `DROP TABLE {schema}.` + costNotifyOnly + `, {schema}.` + costNotified

// emptyOutboxSQL deletes channel $1's outbox rows.
const emptyOutboxSQL = `DELETE FROM {schema}.notified_outbox WHERE channel = $1`

// Reading the figures.

// clockNowSQL reads the database's clock.
const clockNowSQL = `SELECT clock_timestamp()`

// clockSQL reads the database's clock, as text.
const clockSQL = `SELECT clock_timestamp()::text`

// argsBytesSQL returns the average size of the jobs' args, in bytes.
const argsBytesSQL = `SELECT coalesce(avg(octet_length(args::text)), 0)::int FROM {schema}.river_job`

// baselineSecondsSQL returns the seconds from $1 to the end of the last
// statement that inserted jobs.
const baselineSecondsSQL = `SELECT extract(epoch FROM max({markAt}) - $1::timestamptz)::float8 FROM {schema}.bench_mark m`

// A throughput is measured from a phase's start, written {start} (see
// secondsSQL): drainStartSQL or firstCommitSQL.

// drainStartSQL is when a drain's bridges started: the database's clock
// $1, read then.
const drainStartSQL = `$1::timestamptz`

// firstCommitSQL is when the first event was committed.
const firstCommitSQL = `(SELECT min({eventAt}) FROM {schema}.events e)`

// bridgeSecondsSQL returns the seconds from {start} to the end of the last
// statement that inserted jobs.
const bridgeSecondsSQL = `SELECT extract(epoch FROM (SELECT max({markAt}) FROM {schema}.bench_mark m) - {start})::float8`

// handledSecondsSQL returns the seconds from {start} to the last job's
// completion.
const handledSecondsSQL = `SELECT extract(epoch FROM (SELECT max({handledAt}) FROM {schema}.notified_job h) - {start})::float8`

// secondsSQL returns q (bridgeSecondsSQL or handledSecondsSQL) measured
// from start (drainStartSQL or firstCommitSQL).
func secondsSQL(q, start string) string { return strings.ReplaceAll(q, "{start}", start) }

// jobLatenciesSQL lists, as l in milliseconds, each event's latency from
// its commit to the insert of its job of kind $1 (steady mode, where
// bench_job has a row per job).
const jobLatenciesSQL = `SELECT extract(epoch FROM {jobAt} - {eventAt}) * 1000 AS l
		FROM {schema}.bench_job bj JOIN {schema}.river_job j ON j.id = bj.job_id
		JOIN {schema}.events e ON e.id = (j.args->>'event_id')::bigint
		WHERE j.kind = $1`

// handledLatenciesSQL lists, as l in milliseconds, each event's latency
// from its commit to the completion of its job of kind $1.
const handledLatenciesSQL = `SELECT extract(epoch FROM {handledAt} - {eventAt}) * 1000 AS l
		FROM {schema}.notified_job h JOIN {schema}.events e ON e.id = h.event_id::bigint
		WHERE h.kind = $1`

// distributionSQL returns the count of the latencies l of {latencies}
// (jobLatenciesSQL or handledLatenciesSQL, with their parameters), their
// 50th, 90th and 99th percentiles and their maximum (zeros when there are
// none).
const distributionSQL = `SELECT count(*), coalesce(percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY l), ARRAY[0, 0, 0]::float8[]),
		coalesce(max(l), 0) FROM ({latencies}) AS x`

// distributionOf returns distributionSQL of latencies.
func distributionOf(latencies string) string {
	return strings.ReplaceAll(distributionSQL, "{latencies}", latencies)
}

// drainSQL returns how long after the last event's commit the last job was
// inserted, in milliseconds (0 without events), and the rate the
// producers committed at, events/s (0 without events or time between the
// first and the last).
const drainSQL = `SELECT
		coalesce(extract(epoch FROM (SELECT max({jobAt}) FROM {schema}.bench_job bj) - max({eventAt})) * 1000, 0)::float8,
		coalesce(count(*) / nullif(extract(epoch FROM max({eventAt}) - min({eventAt})), 0), 0)::float8
		FROM {schema}.events e`

// completedJobsSQL counts the jobs whose completion is recorded.
const completedJobsSQL = `SELECT count(*) FROM {schema}.notified_job WHERE state = 'completed'`

// verifySQL returns the number of events, of events recorded as
// dispatched, of jobs, and of distinct (event, handler) pairs among the
// jobs (a webhook route's handler is its URL).
const verifySQL = `SELECT
		(SELECT count(*) FROM {schema}.events),
		(SELECT count(*) FROM {schema}.notified_dispatch WHERE outcome = 'dispatched'),
		count(*), count(DISTINCT (args->>'event_id', kind, coalesce(metadata->'notified'->'webhook'->>'url', '')))
	FROM {schema}.river_job`

// laneJobsSQL counts the jobs that went through a lane: their metadata
// names it.
const laneJobsSQL = `SELECT count(*) FROM {schema}.river_job WHERE metadata->'notified' ? 'lane'`

// asyncCommitSQL makes a transaction commit without waiting for its WAL
// flush, as the bridge's dispatch transactions do.
const asyncCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`
