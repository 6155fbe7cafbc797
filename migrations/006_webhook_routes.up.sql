-- Webhook routes: a route may deliver its events over HTTP instead of to a
-- Go handler. Its jobs are of the built-in kind notified_webhook, worked by
-- `notified-bridge work` (or jobs.RegisterWebhooks), which POSTs the event,
-- signed per Standard Webhooks, to webhook_url. Several webhook routes of
-- one event (to different URLs) are separate routes: the URL is part of the
-- key. The signing secret is never stored: secret_env names the worker's
-- environment variable that holds it.
ALTER TABLE notified_route
    ADD COLUMN webhook_url text NOT NULL DEFAULT ''
        CHECK (webhook_url = '' OR (webhook_url ~ '^https?://' AND octet_length(webhook_url) <= 2048)),
    ADD COLUMN secret_env text
        CHECK (secret_env IS NULL OR secret_env ~ '^NOTIFIED_WEBHOOK_SECRET[A-Z0-9_]{0,64}$'),
    ADD CONSTRAINT notified_route_webhook_kind
        CHECK ((webhook_url = '') = (kind <> 'notified_webhook')),
    ADD CONSTRAINT notified_route_secret_needs_webhook
        CHECK (secret_env IS NULL OR webhook_url <> '');

ALTER TABLE notified_route DROP CONSTRAINT notified_route_pkey;
ALTER TABLE notified_route ADD PRIMARY KEY (event_name, kind, webhook_url);

-- The URL a webhook job was delivered to, kept after River's cleaner has
-- deleted the job.
ALTER TABLE notified_job ADD COLUMN webhook_url text;

CREATE OR REPLACE FUNCTION notified_record_job() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
    INSERT INTO notified_job (job_id, channel, event_id, event_name, kind, queue, state,
        attempt, max_attempts, created_at, attempted_at, finalized_at, last_error, output, replay_id, lane, webhook_url)
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
        NEW.metadata->'notified'->>'lane',
        NEW.metadata->'notified'->'webhook'->>'url')
    ON CONFLICT (job_id) DO UPDATE SET
        state = EXCLUDED.state, queue = EXCLUDED.queue, attempt = EXCLUDED.attempt,
        max_attempts = EXCLUDED.max_attempts, attempted_at = EXCLUDED.attempted_at,
        finalized_at = EXCLUDED.finalized_at, last_error = EXCLUDED.last_error,
        output = EXCLUDED.output, recorded_at = now();
    RETURN NULL;
END
$fn$;

-- Every job notified created, as in migration 002, with the URL a webhook
-- job delivers to ('' for other jobs): webhook routes share their kind, so
-- a handler is its kind and that URL.
CREATE OR REPLACE VIEW notified_jobs AS
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
       true AS in_river,
       coalesce(j.metadata->'notified'->'webhook'->>'url', '') AS webhook_url
FROM river_job j
WHERE j.metadata ? 'notified'
UNION ALL
SELECT n.job_id, n.channel, n.event_id, n.event_name, n.kind, n.queue, n.state,
       n.attempt, n.max_attempts, n.created_at, n.attempted_at, n.finalized_at,
       n.last_error, n.output, n.replay_id, false, coalesce(n.webhook_url, '')
FROM notified_job n
WHERE NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = n.job_id);
