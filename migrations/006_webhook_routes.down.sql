-- notified_jobs as migration 002 made it (a column cannot be dropped from
-- a view by CREATE OR REPLACE: the view is made again, and
-- notified_history, which does not depend on it, stays).
DROP VIEW IF EXISTS notified_jobs;
CREATE VIEW notified_jobs AS
SELECT j.id AS job_id,
       j.metadata->'notified'->>'channel' AS channel,
       j.metadata->'notified'->>'event_id' AS event_id,
       j.metadata->'notified'->>'event_name' AS event_name,
       j.kind, j.queue, j.state::text AS state, j.attempt, j.max_attempts,
       j.created_at, j.attempted_at, j.finalized_at,
       j.errors[array_upper(j.errors, 1)]->>'error' AS last_error,
       j.metadata->'output' AS output,
       CASE WHEN jsonb_typeof(j.metadata->'notified'->'replay_id') = 'number'
            THEN (j.metadata->'notified'->>'replay_id')::bigint END AS replay_id,
       true AS in_river
FROM river_job j
WHERE j.metadata ? 'notified'
UNION ALL
SELECT n.job_id, n.channel, n.event_id, n.event_name, n.kind, n.queue, n.state,
       n.attempt, n.max_attempts, n.created_at, n.attempted_at, n.finalized_at,
       n.last_error, n.output, n.replay_id, false
FROM notified_job n
WHERE NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = n.job_id);
CREATE OR REPLACE FUNCTION notified_record_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO notified_job (job_id, channel, event_id, event_name, kind, queue, state,
        attempt, max_attempts, created_at, attempted_at, finalized_at, last_error, output, replay_id, lane)
    VALUES (NEW.id,
        coalesce(NEW.metadata->'notified'->>'channel', ''),
        coalesce(NEW.metadata->'notified'->>'event_id', ''),
        coalesce(NEW.metadata->'notified'->>'event_name', ''),
        NEW.kind, NEW.queue, NEW.state::text, NEW.attempt, NEW.max_attempts,
        NEW.created_at, NEW.attempted_at, coalesce(NEW.finalized_at, now()),
        NEW.errors[array_upper(NEW.errors, 1)]->>'error',
        NEW.metadata->'output',
        CASE WHEN jsonb_typeof(NEW.metadata->'notified'->'replay_id') = 'number'
             THEN (NEW.metadata->'notified'->>'replay_id')::bigint END,
        NEW.metadata->'notified'->>'lane')
    ON CONFLICT (job_id) DO UPDATE SET
        state = EXCLUDED.state, queue = EXCLUDED.queue, attempt = EXCLUDED.attempt,
        max_attempts = EXCLUDED.max_attempts, attempted_at = EXCLUDED.attempted_at,
        finalized_at = EXCLUDED.finalized_at, last_error = EXCLUDED.last_error,
        output = EXCLUDED.output, recorded_at = now();
    RETURN NULL;
END
$fn$;
ALTER TABLE notified_job DROP COLUMN IF EXISTS webhook_url;
DELETE FROM notified_route WHERE webhook_url <> '';
ALTER TABLE notified_route DROP CONSTRAINT notified_route_pkey;
ALTER TABLE notified_route ADD PRIMARY KEY (event_name, kind);
ALTER TABLE notified_route DROP CONSTRAINT IF EXISTS notified_route_secret_needs_webhook;
ALTER TABLE notified_route DROP CONSTRAINT IF EXISTS notified_route_webhook_kind;
ALTER TABLE notified_route DROP COLUMN IF EXISTS secret_env;
ALTER TABLE notified_route DROP COLUMN IF EXISTS webhook_url;
