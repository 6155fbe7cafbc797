-- History: how every job notified created ended, kept after River's cleaner
-- deletes the job, plus the replays that created jobs again and the bridges
-- that are running.

-- One row per job of notified's (its metadata has the key "notified") that
-- reached a final state. Written by the trigger below as River finalizes the
-- job, in the same transaction, whoever finalizes it (a worker, the UI, the
-- rescuer); updated if the job is retried and finalized again.
CREATE TABLE notified_job (
    job_id       bigint      PRIMARY KEY,
    channel      text        NOT NULL,
    event_id     text        NOT NULL,
    event_name   text        NOT NULL,
    kind         text        NOT NULL,
    queue        text        NOT NULL,
    state        text        NOT NULL,
    attempt      smallint    NOT NULL,
    max_attempts smallint    NOT NULL,
    created_at   timestamptz NOT NULL,
    attempted_at timestamptz,
    finalized_at timestamptz NOT NULL,
    last_error   text,
    output       jsonb,
    replay_id    bigint,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notified_job_event ON notified_job (channel, event_id);
CREATE INDEX notified_job_finalized_at ON notified_job (finalized_at);
CREATE INDEX notified_job_dead ON notified_job (kind, finalized_at)
    WHERE state IN ('discarded', 'cancelled');

CREATE FUNCTION notified_record_job() RETURNS trigger
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

REVOKE ALL ON FUNCTION notified_record_job() FROM PUBLIC;

CREATE TRIGGER notified_record_job
    AFTER UPDATE ON river_job
    FOR EACH ROW
    WHEN (NEW.state IN ('completed', 'cancelled', 'discarded')
          AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.metadata ? 'notified')
    EXECUTE FUNCTION notified_record_job();

-- One row per replay: who asked, when, why, what it selected and did.
CREATE TABLE notified_replay (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel      text        NOT NULL,
    requested_by text        NOT NULL,
    db_user      text        NOT NULL DEFAULT current_user,
    reason       text        NOT NULL,
    selector     jsonb       NOT NULL,
    handlers     text[],
    events       integer     NOT NULL DEFAULT 0,
    jobs         integer     NOT NULL DEFAULT 0,
    skipped      integer     NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE INDEX notified_replay_started_at ON notified_replay (started_at);

-- One row per running bridge, refreshed every poll interval and deleted when
-- it stops.
CREATE TABLE notified_bridge (
    id            text        PRIMARY KEY,
    channel       text        NOT NULL,
    host          text        NOT NULL,
    pid           integer     NOT NULL,
    version       text        NOT NULL,
    poll_interval interval    NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    seen_at       timestamptz NOT NULL DEFAULT now()
);

-- Every job notified created, live or finished: River's row while it exists,
-- the recorded outcome after River's cleaner has deleted it.
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

-- One row per (event, job): every event the bridge recorded, whatever its
-- outcome, with each job created for it (at dispatch or by a replay). An
-- event without jobs (unrouted, missing, rejected) has one row whose job
-- columns are NULL. Filter on channel and event_id for one event: the jobs
-- are then found through River's index on metadata.
CREATE VIEW notified_history AS
SELECT d.channel, d.event_id, d.event_name, d.outcome, d.reason,
       d.notified_at, d.dispatched_at,
       j.kind AS handler, j.job_id, j.queue, j.state, j.attempt, j.max_attempts,
       j.created_at AS job_created_at, j.attempted_at, j.finalized_at,
       j.last_error, j.output, j.replay_id,
       r.requested_by AS replayed_by, r.reason AS replay_reason
FROM notified_dispatch d
LEFT JOIN LATERAL (
    SELECT rj.id AS job_id, rj.kind, rj.queue, rj.state::text AS state, rj.attempt, rj.max_attempts,
           rj.created_at, rj.attempted_at, rj.finalized_at,
           rj.errors[array_upper(rj.errors, 1)]->>'error' AS last_error,
           rj.metadata->'output' AS output,
           CASE WHEN jsonb_typeof(rj.metadata->'notified'->'replay_id') = 'number'
                THEN (rj.metadata->'notified'->>'replay_id')::bigint END AS replay_id
    FROM river_job rj
    WHERE rj.metadata @> jsonb_build_object('notified',
              jsonb_build_object('channel', d.channel, 'event_id', d.event_id))
    UNION ALL
    SELECT n.job_id, n.kind, n.queue, n.state, n.attempt, n.max_attempts,
           n.created_at, n.attempted_at, n.finalized_at, n.last_error, n.output, n.replay_id
    FROM notified_job n
    WHERE n.channel = d.channel AND n.event_id = d.event_id
      AND NOT EXISTS (SELECT 1 FROM river_job x WHERE x.id = n.job_id)
) j ON true
LEFT JOIN notified_replay r ON r.id = j.replay_id;
