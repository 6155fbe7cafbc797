DROP TRIGGER IF EXISTS notified_lane_jobs_deleted ON river_job;
DROP TRIGGER IF EXISTS notified_lane_jobs_finalized ON river_job;
DROP FUNCTION IF EXISTS notified_lane_jobs_done();
DROP FUNCTION IF EXISTS notified_lane_wake_up();
DROP FUNCTION IF EXISTS notified_lane_release_done(bigint[]);
DROP FUNCTION IF EXISTS notified_lane_release(bigint[], bigint[], text[]);
DROP FUNCTION IF EXISTS notified_lane_append(text, text[], text[], boolean[], bigint[], boolean[]);
DROP FUNCTION IF EXISTS notified_lane_open(text, text[], text[]);
DROP FUNCTION IF EXISTS notified_lane_advance(bigint, text);
CREATE OR REPLACE FUNCTION notified_record_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO notified_job (job_id, channel, event_id, event_name, kind, queue, state,
        attempt, max_attempts, created_at, attempted_at, finalized_at, last_error, output, replay_id)
    VALUES (NEW.id,
        coalesce(NEW.metadata->'notified'->>'channel', ''),
        coalesce(NEW.metadata->'notified'->>'event_id', ''),
        coalesce(NEW.metadata->'notified'->>'event_name', ''),
        NEW.kind, NEW.queue, NEW.state::text, NEW.attempt, NEW.max_attempts,
        NEW.created_at, NEW.attempted_at, coalesce(NEW.finalized_at, now()),
        NEW.errors[array_upper(NEW.errors, 1)]->>'error',
        NEW.metadata->'output',
        CASE WHEN jsonb_typeof(NEW.metadata->'notified'->'replay_id') = 'number'
             THEN (NEW.metadata->'notified'->>'replay_id')::bigint END)
    ON CONFLICT (job_id) DO UPDATE SET
        state = EXCLUDED.state, queue = EXCLUDED.queue, attempt = EXCLUDED.attempt,
        max_attempts = EXCLUDED.max_attempts, attempted_at = EXCLUDED.attempted_at,
        finalized_at = EXCLUDED.finalized_at, last_error = EXCLUDED.last_error,
        output = EXCLUDED.output, recorded_at = now();
    RETURN NULL;
END
$fn$;
ALTER TABLE notified_job DROP COLUMN IF EXISTS lane;
DROP TABLE IF EXISTS notified_lane_event;
DROP TABLE IF EXISTS notified_lane_wake;
DROP TABLE IF EXISTS notified_lane_job;
DROP TABLE IF EXISTS notified_lane;
ALTER TABLE notified_route DROP COLUMN IF EXISTS on_failure;
ALTER TABLE notified_route DROP COLUMN IF EXISTS ordered_by;
