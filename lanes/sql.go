package lanes

// The store's queries. {schema}. stands for the store's schema (see
// dbtx.InSchema); every value is a parameter.

// listLanesSQL lists the lanes of channel $1 (empty: every channel), of
// kind $2 (empty: every kind), only the stopped ones if $3, at most $4,
// ordered by channel, kind and key, after the lane ($5, $6, $7) when $5 is
// not NULL. Each lane's head state comes from River while it has the job.
const listLanesSQL = `SELECT l.channel, l.kind, l.key, l.head_job_id, j.state::text, l.stopped_job_id, l.stopped_at,
		(SELECT count(*) FROM {schema}.notified_lane_job w WHERE w.lane_id = l.id AND w.job_id IS DISTINCT FROM l.head_job_id),
		l.created_at
	FROM {schema}.notified_lane l
	LEFT JOIN {schema}.river_job j ON j.id = l.head_job_id
	WHERE ($1 = '' OR l.channel = $1) AND ($2 = '' OR l.kind = $2) AND (NOT $3 OR l.stopped_job_id IS NOT NULL)
		AND ($5::text IS NULL OR (l.channel, l.kind, l.key) > ($5, $6, $7))
	ORDER BY l.channel, l.kind, l.key
	LIMIT $4`

// lockLaneSQL locks the lane of channel $1, kind $2 and key $3 and reads
// its id and stopped job.
const lockLaneSQL = `SELECT id, stopped_job_id FROM {schema}.notified_lane
	WHERE channel = $1 AND kind = $2 AND key = $3 FOR UPDATE`

// retryStoppedSQL makes job $1, the failed job a lane stopped at, available
// again, with one more attempt if it used them all, and tells River's
// producers of its queue. It returns the job's queue; no row if River no
// longer has the job as discarded or cancelled.
const retryStoppedSQL = `WITH j AS (
		UPDATE {schema}.river_job SET state = 'available', finalized_at = NULL, scheduled_at = now(),
			max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END
		WHERE id = $1 AND state IN ('discarded', 'cancelled')
		RETURNING queue
	)
	SELECT queue, pg_notify(coalesce(nullif($2, ''), current_schema()) || '.river_insert', json_build_object('queue', queue)::text) FROM j`

// resumeSQL resumes lane $1, stopped at job $2: with $3, that job is its
// head again, first in the lane; without, the lane moves on to its next
// job. The resume is recorded with actor $4 and reason $5.
const resumeSQL = `WITH r AS (
		UPDATE {schema}.notified_lane SET stopped_job_id = NULL, stopped_at = NULL,
			head_job_id = CASE WHEN $3 THEN $2::bigint END
		WHERE id = $1
		RETURNING channel, kind, key
	), e AS (
		INSERT INTO {schema}.notified_lane_job (lane_id, position, job_id, stop) OVERRIDING SYSTEM VALUE
		SELECT $1, coalesce((SELECT min(position) FROM {schema}.notified_lane_job WHERE lane_id = $1), 1) - 1, $2, true
		WHERE $3
	)
	INSERT INTO {schema}.notified_lane_event (channel, kind, key, action, job_id, actor, reason)
	SELECT channel, kind, key, 'resumed', $2, $4, $5 FROM r`

// advanceSQL moves lane $1 on (see notified_lane_advance).
const advanceSQL = `SELECT {schema}.notified_lane_advance($1)`

// eventsSQL lists what happened at the failures of the jobs $1 and the
// resumes of lanes stopped at them.
const eventsSQL = `SELECT channel, kind, key, action, job_id, job_state, next_job_id, actor, reason, at
	FROM {schema}.notified_lane_event WHERE job_id = ANY($1::bigint[]) ORDER BY at, id`

// summarySQL counts, per handler kind, the lanes of channel $1, those
// stopped, and the jobs waiting behind their heads.
const summarySQL = `SELECT l.kind, count(DISTINCT l.id), count(DISTINCT l.id) FILTER (WHERE l.stopped_job_id IS NOT NULL),
		count(j.job_id) FILTER (WHERE j.job_id IS DISTINCT FROM l.head_job_id)
	FROM {schema}.notified_lane l
	LEFT JOIN {schema}.notified_lane_job j ON j.lane_id = l.id
	WHERE l.channel = $1
	GROUP BY l.kind ORDER BY l.kind`
