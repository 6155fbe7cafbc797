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
