package history

import (
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/notified/notified/internal/dbtx"
)

// The store's queries. {schema}. stands for the store's schema (see
// dbtx.InSchema); every value is a parameter.

// eventDispatchSQL reads the dispatch record of event $2 on channel $1.
const eventDispatchSQL = `SELECT event_name, outcome, reason, notified_at, dispatched_at, jobs
	FROM {schema}.notified_dispatch WHERE channel = $1 AND event_id = $2`

// eventPendingSQL returns when event $2 was first written to the outbox of
// channel $1, or NULL when it is not there.
const eventPendingSQL = `SELECT min(created_at) FROM {schema}.notified_outbox
	WHERE channel = $1 AND event_id = $2`

// eventJobsSQL lists every job created for event $2 on channel $1, oldest
// first, with the replay that created it, if any.
const eventJobsSQL = `SELECT job_id, handler, queue, state, attempt, max_attempts,
		job_created_at, attempted_at, finalized_at, last_error, output, replay_id, replayed_by, replay_reason
	FROM {schema}.notified_history
	WHERE channel = $1 AND event_id = $2 AND job_id IS NOT NULL
	ORDER BY job_id`

// jobDetailsSQL reads, for each of the jobs $1: the data of its args while
// River has it (the event's row as its handler received it), its lane if
// it has one (from River while it has the job, from notified_job after),
// for a job waiting in its lane the lane's head job or the failed job it
// is stopped at, and a webhook job's URL.
const jobDetailsSQL = `SELECT j.id, r.args->'data', coalesce(r.metadata->'notified'->>'lane', n.lane),
		CASE WHEN r.state = 'pending' THEN l.head_job_id END,
		CASE WHEN r.state = 'pending' THEN l.stopped_job_id END,
		coalesce(r.metadata->'notified'->'webhook'->>'url', n.webhook_url)
	FROM unnest($1::bigint[]) AS j(id)
	LEFT JOIN {schema}.river_job r ON r.id = j.id
	LEFT JOIN {schema}.notified_job n ON n.job_id = j.id
	LEFT JOIN {schema}.notified_lane l ON l.channel = r.metadata->'notified'->>'channel'
		AND l.kind = r.kind AND l.key = r.metadata->'notified'->>'lane'`

// deadLettersSQL lists the dead letters of channel @channel, newest first:
// its jobs that ended discarded or cancelled and are the newest job of
// their handler for their event, live in River or recorded after it. The
// columns are those scanJob reads. deadLettersQuery fills {filters} and
// {limit}.
const deadLettersSQL = `SELECT job_id, event_id, event_name, kind, queue, state, attempt, max_attempts,
		created_at, attempted_at, finalized_at, last_error, output, replay_id, webhook_url
	FROM {schema}.notified_jobs d
	WHERE d.state IN ('discarded', 'cancelled') AND d.channel = @channel{filters}
	  AND {newest}
	ORDER BY d.finalized_at DESC, d.job_id DESC{limit}`

// newestJobSQL is the condition that the row {job} of notified_jobs is
// the newest job of its handler for its event: no later job of the same
// kind (and, for webhook routes, which share their kind, the same URL) for
// the same event, live in River or recorded after River deleted it.
const newestJobSQL = `NOT EXISTS (SELECT 1 FROM {schema}.river_job l
		WHERE l.metadata @> jsonb_build_object('notified', jsonb_build_object('channel', {job}.channel, 'event_id', {job}.event_id))
		  AND l.kind = {job}.kind AND coalesce(l.metadata->'notified'->'webhook'->>'url', '') = {job}.webhook_url
		  AND l.id > {job}.job_id)
	  AND NOT EXISTS (SELECT 1 FROM {schema}.notified_job l
		WHERE l.channel = {job}.channel AND l.event_id = {job}.event_id AND l.kind = {job}.kind
		  AND coalesce(l.webhook_url, '') = {job}.webhook_url AND l.job_id > {job}.job_id)`

// NewestJobCondition is the SQL condition that the row alias of
// notified_jobs, in schema, is the newest job of its handler for its
// event (later jobs come from a retry of a dead letter or a replay): the
// job whose state says how the handler fares with the event. alias must be
// a plain SQL identifier of the caller's own query.
func NewestJobCondition(schema, alias string) string {
	return dbtx.InSchema(schema, strings.ReplaceAll(newestJobSQL, "{job}", alias))
}

// deadLetterCountSQL counts the dead letters of channel $1 finalized at or
// after $2: the rows deadLettersSQL lists with only those two filters, read
// from the base tables rather than through notified_jobs, so that each step
// uses an index or reads a table River's cleaner keeps small, with or
// without statistics:
//
//   - recorded: the outcomes in notified_job that are dead, through the
//     partial index notified_job_dead (the channel is filtered after it, as
//     notified_job_event would read every row of a busy channel);
//   - dead: those whose job River has deleted, and River's own dead jobs,
//     through river_job_state_and_finalized_at_index (notified_jobs casts
//     the state to text, which no index serves);
//   - live: the newest unfinished job of each event and handler in
//     river_job, through River's index on state (few, however many
//     finished jobs River keeps: a later finished job is in notified_job,
//     whose trigger records every finalization), instead of one probe of
//     river_job's GIN index per dead letter, whose every probe scans the
//     index's pending list (seconds each after a bulk load when autovacuum
//     is off), or a pass over every job of the channel (3.6 s with
//     1,000,000 finished jobs; 0.2 s this way);
//
// and a later outcome in notified_job is probed through notified_job_event.
// The CTEs are MATERIALIZED so that the planner keeps this shape whatever
// it estimates.
const deadLetterCountSQL = `WITH recorded AS MATERIALIZED (
		SELECT n.job_id, n.kind, n.channel, n.event_id, coalesce(n.webhook_url, '') AS url
		FROM {schema}.notified_job n
		WHERE n.state IN ('discarded', 'cancelled') AND n.finalized_at >= $2),
	dead AS MATERIALIZED (
		SELECT j.id AS job_id, j.kind, j.metadata->'notified'->>'event_id' AS event_id,
			coalesce(j.metadata->'notified'->'webhook'->>'url', '') AS url
		FROM {schema}.river_job j
		WHERE j.state IN ('discarded', 'cancelled') AND j.finalized_at >= $2
		  AND j.metadata->'notified'->>'channel' = $1
		UNION ALL
		SELECT r.job_id, r.kind, r.event_id, r.url FROM recorded r
		WHERE r.channel = $1 AND NOT EXISTS (SELECT 1 FROM {schema}.river_job x WHERE x.id = r.job_id)),
	live AS MATERIALIZED (
		SELECT l.metadata->'notified'->>'event_id' AS event_id, l.kind,
			coalesce(l.metadata->'notified'->'webhook'->>'url', '') AS url, max(l.id) AS job_id
		FROM {schema}.river_job l
		WHERE l.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		  AND l.metadata->'notified'->>'channel' = $1
		GROUP BY 1, 2, 3)
	SELECT count(*) FROM dead d
	LEFT JOIN live l ON l.event_id = d.event_id AND l.kind = d.kind AND l.url = d.url
	WHERE (l.job_id IS NULL OR l.job_id <= d.job_id)
	  AND NOT EXISTS (SELECT 1 FROM {schema}.notified_job n
		WHERE n.channel = $1 AND n.event_id = d.event_id AND n.kind = d.kind AND coalesce(n.webhook_url, '') = d.url
		  AND n.job_id > d.job_id)`

// The parts of deadLettersSQL that only a filter that is on adds.
const (
	// deadLettersOfHandlers keeps the jobs of the handlers @handlers.
	deadLettersOfHandlers = "\n\t  AND d.kind = ANY(@handlers)"
	// deadLettersSince keeps the jobs finalized at or after @since.
	deadLettersSince = "\n\t  AND d.finalized_at >= @since"
	// deadLettersOfJobs keeps the jobs @job_ids.
	deadLettersOfJobs = "\n\t  AND d.job_id = ANY(@job_ids)"
	// deadLettersLimit returns at most @limit jobs.
	deadLettersLimit = "\n\tLIMIT @limit"
)

// deadLettersQuery returns deadLettersSQL, for the tables in schema, with
// the filters of f that are on, and its arguments.
//
// A filter that is off is left out of the query rather than passed as NULL
// (@since IS NULL OR ...): pgx prepares each query text once per
// connection, and after five runs Postgres may keep a generic plan, made
// without the values, in which a filter written with OR serves no index.
// Each combination of filters is its own query, whose plans keep using the
// index of each of its filters (the window of Status, the ids of a retry).
func deadLettersQuery(schema string, f DeadLetterFilter) (string, pgx.NamedArgs) {
	args := pgx.NamedArgs{"channel": f.Channel}
	var filters, limit string
	if len(f.Handlers) > 0 {
		filters += deadLettersOfHandlers
		args["handlers"] = f.Handlers
	}
	if !f.Since.IsZero() {
		filters += deadLettersSince
		args["since"] = f.Since
	}
	if len(f.JobIDs) > 0 {
		filters += deadLettersOfJobs
		args["job_ids"] = f.JobIDs
	}
	if f.Limit > 0 {
		limit = deadLettersLimit
		args["limit"] = int64(f.Limit)
	}
	q := strings.NewReplacer("{filters}", filters, "{limit}", limit, "{newest}", strings.ReplaceAll(newestJobSQL, "{job}", "d")).Replace(deadLettersSQL)
	return dbtx.InSchema(schema, q), args
}

// The prune queries delete at most pruneBatch rows each, the oldest first
// found, skipping rows that another prune has locked.

// pruneDispatchSQL deletes dispatch records of events dispatched before $1.
const pruneDispatchSQL = `DELETE FROM {schema}.notified_dispatch WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {schema}.notified_dispatch WHERE dispatched_at < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED))`

// pruneJobsSQL deletes the outcomes of jobs finalized before $1.
const pruneJobsSQL = `DELETE FROM {schema}.notified_job WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {schema}.notified_job WHERE finalized_at < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED))`

// pruneReplaysSQL deletes replays started before $1.
const pruneReplaysSQL = `DELETE FROM {schema}.notified_replay WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {schema}.notified_replay WHERE started_at < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED))`

// pruneBridgesSQL deletes bridges not seen for a day.
const pruneBridgesSQL = `DELETE FROM {schema}.notified_bridge WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {schema}.notified_bridge WHERE seen_at < now() - interval '1 day' LIMIT 5000 FOR UPDATE SKIP LOCKED))`

// statusBacklogSQL returns the database's time, and the number of events in
// the outbox of channel $1, when the oldest was written and how long ago, in
// seconds.
const statusBacklogSQL = `SELECT now(), count(*), min(created_at), extract(epoch FROM now() - min(created_at))::float8
	FROM {schema}.notified_outbox WHERE channel = $1`

// statusOutcomesSQL counts the events of channel $1 dispatched in the last
// minute and in the last hour, by outcome.
const statusOutcomesSQL = `SELECT outcome, count(*) FILTER (WHERE dispatched_at > now() - interval '1 minute'), count(*)
	FROM {schema}.notified_dispatch
	WHERE channel = $1 AND dispatched_at > now() - interval '1 hour' GROUP BY outcome`

// statusHandlersSQL counts the jobs of channel $1 that are live or were
// finalized within the interval $2, by handler (kind, and the URL of a
// webhook route's jobs, which share their kind) and state, with how many of
// them are failing, and the newest error of those and when it happened.
//
// Live jobs are read from River's table through its index on state (few,
// whatever the history's size); finalized ones from notified_job, which
// records every finalization, less those River has live again (retried
// since), subtracted by probing notified_job's key for each live job rather
// than River's table for each finished one. Counting and finding the newest
// error are separate aggregates, so neither sorts the window's jobs. With a
// day of 1,000,000 jobs, through the notified_jobs view (a probe of River's
// table per recorded job, and a sort of them all for the newest error) this
// took 4.2-7.0 s without statistics and 3.1-4.1 s after ANALYZE; this way,
// 0.7-1.8 s and 0.35-0.52 s.
const statusHandlersSQL = `WITH live AS MATERIALIZED (
		SELECT j.id, j.kind, coalesce(j.metadata->'notified'->'webhook'->>'url', '') AS url, j.state::text AS state,
		       j.attempted_at AS at, j.errors[array_upper(j.errors, 1)]->>'error' AS last_error
		FROM {schema}.river_job j
		WHERE j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled')
		  AND j.metadata->'notified'->>'channel' = $1
	), finished AS (
		SELECT kind, url, state, sum(n)::bigint AS n FROM (
			SELECT n.kind, coalesce(n.webhook_url, '') AS url, n.state, count(*) AS n FROM {schema}.notified_job n
			WHERE n.finalized_at > now() - $2::interval AND n.channel = $1
			GROUP BY 1, 2, 3
			UNION ALL
			SELECT n.kind, coalesce(n.webhook_url, ''), n.state, -count(*) FROM live l JOIN {schema}.notified_job n ON n.job_id = l.id
			WHERE n.finalized_at > now() - $2::interval AND n.channel = $1
			GROUP BY 1, 2, 3
		) x GROUP BY kind, url, state HAVING sum(n) > 0
	), counts AS (
		SELECT kind, url, state, count(*) AS n FROM live GROUP BY kind, url, state
		UNION ALL
		SELECT kind, url, state, n FROM finished
	), errs AS (
		SELECT DISTINCT ON (kind, url, state) kind, url, state, last_error, at FROM (
			SELECT kind, url, state, last_error, at FROM live WHERE state = 'retryable' AND last_error IS NOT NULL
			UNION ALL
			SELECT n.kind, coalesce(n.webhook_url, ''), n.state, n.last_error, n.finalized_at FROM {schema}.notified_job n
			WHERE n.state IN ('discarded', 'cancelled') AND n.finalized_at > now() - $2::interval
			  AND n.channel = $1 AND n.last_error IS NOT NULL
			  AND NOT EXISTS (SELECT 1 FROM {schema}.river_job j WHERE j.id = n.job_id
			                  AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled'))
		) f ORDER BY kind, url, state, at DESC NULLS LAST
	)
	SELECT c.kind, c.url, c.state, c.n,
		CASE WHEN c.state IN ('retryable', 'discarded', 'cancelled') THEN c.n ELSE 0 END,
		e.last_error, e.at
	FROM counts c LEFT JOIN errs e USING (kind, url, state)
	ORDER BY c.kind, c.url, c.state`

// statusBridgesSQL lists the bridges of channel $1, oldest first, with
// their poll interval in seconds and whether they checked in within three
// of them.
const statusBridgesSQL = `SELECT id, host, pid, version, channel, started_at, seen_at,
		extract(epoch FROM poll_interval)::float8, seen_at > now() - 3 * poll_interval
	FROM {schema}.notified_bridge WHERE channel = $1 ORDER BY started_at, id`

// handlerOutcomesSQL counts the jobs of channel $1 by handler (kind and,
// for a webhook route, URL: webhook routes share their kind) and state:
// those finalized at or after $2, from the outcomes notified_job records
// (every job River finalizes, whether River still has it or not), read
// through notified_job_finalized_at before the channel is filtered (see
// deadLetterCountSQL); and those River has retryable now.
const handlerOutcomesSQL = `WITH finished AS MATERIALIZED (
		SELECT n.channel, n.kind, coalesce(n.webhook_url, '') AS url, n.state FROM {schema}.notified_job n WHERE n.finalized_at >= $2)
	SELECT f.kind, f.url, f.state, count(*) FROM finished f WHERE f.channel = $1 GROUP BY f.kind, f.url, f.state
	UNION ALL
	SELECT j.kind, coalesce(j.metadata->'notified'->'webhook'->>'url', ''), 'retryable', count(*) FROM {schema}.river_job j
	WHERE j.state = 'retryable'
	  AND j.metadata @> jsonb_build_object('notified', jsonb_build_object('channel', $1::text))
	GROUP BY 1, 2
	ORDER BY 1, 2, 3`
