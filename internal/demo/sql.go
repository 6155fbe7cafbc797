package demo

// The demo's statements. {schema}. stands for the demo's schema (see
// dbtx.InSchema), which holds River's and notified's tables and the
// sample events table; every value is a parameter.

// createEventsSQL creates the sample events table.
const createEventsSQL = `CREATE TABLE {schema}.events (
		id bigserial PRIMARY KEY, name text NOT NULL, email text, total numeric, created_at timestamptz NOT NULL DEFAULT now())`

// dropSchemaSQL drops the demo's schema and everything in it, if it exists.
const dropSchemaSQL = `DROP SCHEMA IF EXISTS {schema} CASCADE`

// insertEventSQL inserts the sample event named $1 with email $2 and total
// $3.
const insertEventSQL = `INSERT INTO {schema}.events (name, email, total) VALUES ($1, $2, $3)`

// The events the demo shows, one of each story, in the order told.

// retriedEventSQL picks the event of the first job completed after a retry.
const retriedEventSQL = `SELECT event_id FROM {schema}.notified_jobs WHERE state = 'completed' AND attempt > 1 ORDER BY job_id LIMIT 1`

// cancelledEventsSQL picks the events of the first two jobs cancelled.
const cancelledEventsSQL = `SELECT event_id FROM {schema}.notified_jobs WHERE state = 'cancelled' ORDER BY job_id LIMIT 2`

// skippedEventSQL picks the first event a route's filter skipped.
const skippedEventSQL = `SELECT event_id FROM {schema}.notified_dispatch
	WHERE outcome = 'dispatched' AND jobs @> '[{"skipped": "filter"}]' ORDER BY dispatched_at LIMIT 1`

// unroutedEventSQL picks the first event dispatched without a route.
const unroutedEventSQL = `SELECT event_id FROM {schema}.notified_dispatch WHERE outcome = 'unrouted' ORDER BY dispatched_at LIMIT 1`
