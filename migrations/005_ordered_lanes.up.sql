-- Ordered delivery per key. A route ordered by a key (a jsonpath, e.g.
-- $.order_id) puts the jobs of its events into lanes, one per (channel,
-- handler kind, key): the jobs of one lane run one at a time, in the order
-- the bridge dispatched their events, which is the order the events were
-- committed (docs/design.md, "Ordered delivery"). A job waiting for its
-- turn is River's `pending` state, which River's producers never fetch;
-- it is made `available` in the transaction that finalizes the job before
-- it in its lane, by the trigger below, and River's producers are told
-- with the notification River sends for an insert.

ALTER TABLE notified_route
    ADD COLUMN ordered_by text
        CHECK (ordered_by IS NULL OR (ordered_by <> '' AND ordered_by::jsonpath IS NOT NULL)),
    ADD COLUMN on_failure text NOT NULL DEFAULT 'continue'
        CHECK (on_failure IN ('continue', 'stop'));

-- One row per lane that has jobs: created by the first job appended to it,
-- deleted when its last job is finalized. head_job_id is the job released
-- (available, running, retryable or scheduled); NULL while the lane is
-- stopped (stopped_job_id: the job whose failure stopped it).
CREATE TABLE notified_lane (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel        text        NOT NULL,
    kind           text        NOT NULL,
    key            text        NOT NULL,
    head_job_id    bigint,
    stopped_job_id bigint,
    stopped_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, kind, key)
);

-- The jobs of each lane in their order: the head first (once released),
-- then the jobs waiting, pending in River. An entry whose job was
-- finalized or deleted while waiting (cancelled by hand) is skipped when
-- the lane reaches it.
CREATE TABLE notified_lane_job (
    lane_id  bigint  NOT NULL,
    position bigint  GENERATED ALWAYS AS IDENTITY,
    job_id   bigint  NOT NULL,
    stop     boolean NOT NULL DEFAULT false, -- the route's on_failure was stop when the job was made
    PRIMARY KEY (lane_id, position)
);

-- Lanes whose head was finalized while another transaction held the
-- lane (a dispatch appending to it): the finalizing transaction, River's,
-- never waits for a lane, so it leaves the lane here and notifies
-- <schema>.notified_lane; the next dispatch that opens the lane moves it
-- on (notified_lane_open), and a bridge's lane waker does once the lane is
-- free (notified_lane_wake_up). No unique key: an insert never waits for
-- another transaction.
CREATE TABLE notified_lane_wake (
    lane_id  bigint      NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notified_lane_wake_lane ON notified_lane_wake (lane_id);

-- What happened to lanes at a failure and after: a lane that went on past
-- a discarded or cancelled job, one that stopped there, and who resumed it.
CREATE TABLE notified_lane_event (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel    text        NOT NULL,
    kind       text        NOT NULL,
    key        text        NOT NULL,
    action     text        NOT NULL CHECK (action IN ('continued', 'stopped', 'resumed')),
    job_id     bigint      NOT NULL, -- the job that failed (continued, stopped) or the lane's stopped job (resumed)
    job_state  text,
    next_job_id bigint,              -- the job released next, if any
    actor      text,                 -- resumed: who asked, and why
    reason     text,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notified_lane_event_job ON notified_lane_event (job_id);
CREATE INDEX notified_lane_event_lane ON notified_lane_event (channel, kind, key, at);

-- The lane key of an ordered job, kept in notified_job after River's
-- cleaner has deleted the job.
ALTER TABLE notified_job ADD COLUMN lane text;

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

-- notified_lane_advance moves lane p_lane on, its row locked by the caller:
-- if its head was finalized (or deleted), the head leaves the lane and the
-- first job waiting is made available, unless the head failed and the
-- route said stop. p_head_state, when the caller knows it (the finalizing
-- trigger does), is the head's new state ('deleted' for a deleted head);
-- otherwise it is read from River. Every decision is read from the tables,
-- so calling it again, or on a lane whose head still runs, changes nothing.
CREATE FUNCTION notified_lane_advance(p_lane bigint, p_head_state text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    l      notified_lane;
    e      notified_lane_job;
    st     text;
    q      text;
    done   bigint;
    dstate text;
    dstop  boolean := false;
BEGIN
    SELECT * INTO l FROM notified_lane WHERE id = p_lane;
    IF NOT FOUND OR l.stopped_job_id IS NOT NULL THEN
        RETURN;
    END IF;
    IF l.head_job_id IS NOT NULL THEN
        st := p_head_state;
        IF st IS NULL THEN
            SELECT j.state::text INTO st FROM river_job j WHERE j.id = l.head_job_id;
            st := coalesce(st, 'deleted');
        END IF;
        IF st NOT IN ('completed', 'cancelled', 'discarded', 'deleted') THEN
            RETURN; -- the head still runs, waits for a retry or was snoozed
        END IF;
        done := l.head_job_id;
        dstate := st;
        -- The head is the lane's first entry (a head resumed by retrying
        -- its failed job has none left).
        DELETE FROM notified_lane_job
        WHERE lane_id = l.id AND job_id = done
          AND position = (SELECT min(position) FROM notified_lane_job WHERE lane_id = l.id)
        RETURNING stop INTO dstop;
        IF dstate IN ('cancelled', 'discarded') AND coalesce(dstop, false) THEN
            UPDATE notified_lane SET head_job_id = NULL, stopped_job_id = done, stopped_at = now()
            WHERE id = l.id;
            INSERT INTO notified_lane_event (channel, kind, key, action, job_id, job_state)
            VALUES (l.channel, l.kind, l.key, 'stopped', done, dstate);
            RETURN;
        END IF;
    END IF;
    LOOP
        SELECT * INTO e FROM notified_lane_job WHERE lane_id = l.id ORDER BY position LIMIT 1;
        IF NOT FOUND THEN
            IF dstate IN ('cancelled', 'discarded') THEN
                INSERT INTO notified_lane_event (channel, kind, key, action, job_id, job_state)
                VALUES (l.channel, l.kind, l.key, 'continued', done, dstate);
            END IF;
            DELETE FROM notified_lane WHERE id = l.id;
            RETURN;
        END IF;
        UPDATE river_job SET state = 'available'
        WHERE id = e.job_id AND state = 'pending'
        RETURNING queue INTO q;
        IF NOT FOUND THEN
            -- Not waiting any more: made available by hand (it is the
            -- head now), or finalized or deleted while waiting (skipped).
            SELECT j.state::text INTO st FROM river_job j WHERE j.id = e.job_id;
            IF FOUND AND st NOT IN ('completed', 'cancelled', 'discarded') THEN
                q := NULL;
            ELSE
                DELETE FROM notified_lane_job WHERE lane_id = l.id AND position = e.position;
                CONTINUE;
            END IF;
        END IF;
        UPDATE notified_lane SET head_job_id = e.job_id WHERE id = l.id;
        IF dstate IN ('cancelled', 'discarded') THEN
            INSERT INTO notified_lane_event (channel, kind, key, action, job_id, job_state, next_job_id)
            VALUES (l.channel, l.kind, l.key, 'continued', done, dstate, e.job_id);
        END IF;
        IF q IS NOT NULL THEN
            PERFORM pg_notify(current_schema() || '.river_insert', json_build_object('queue', q)::text);
        END IF;
        RETURN;
    END LOOP;
END
$fn$;

-- notified_lane_open creates or locks the lanes of jobs about to be made,
-- p_kinds[i] and p_keys[i] on channel p_channel, in one order (kind, key),
-- so that callers never deadlock one another, and says, per job, whether
-- it is its lane's head: the first job given for a lane with no job
-- running and not stopped. A head is inserted available, the others
-- pending; notified_lane_append then puts them in their lanes, before the
-- locks are released at commit. A lane whose head was finalized while
-- another transaction held it (River's finalizing transaction left it in
-- notified_lane_wake) is moved on first: the dispatches of a busy channel
-- hold its lanes most of the time, and the lane waker, which never waits
-- for a lane, might not find it free for a while.
CREATE FUNCTION notified_lane_open(p_channel text, p_kinds text[], p_keys text[])
RETURNS boolean[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    moved bigint[];
    heads boolean[];
BEGIN
    -- Creates the missing lanes and locks the others, in (kind, key)
    -- order: DO UPDATE ... WHERE false locks an existing row without
    -- writing a new version of it.
    INSERT INTO notified_lane AS nl (channel, kind, key)
    SELECT DISTINCT p_channel, a.k, a.y FROM unnest(p_kinds, p_keys) AS a(k, y)
    ORDER BY 2, 3
    ON CONFLICT (channel, kind, key) DO UPDATE SET kind = nl.kind WHERE false;

    -- The lanes whose head is gone (finalized or deleted) move on.
    moved := notified_lane_release_done(ARRAY(
        SELECT l.id FROM (SELECT DISTINCT a.k, a.y FROM unnest(p_kinds, p_keys) AS a(k, y)) d
        JOIN notified_lane l ON l.channel = p_channel AND l.kind = d.k AND l.key = d.y));
    IF moved IS NOT NULL THEN
        DELETE FROM notified_lane_wake WHERE lane_id = ANY(moved);
        -- A lane left empty is gone: made again, and locked as new.
        INSERT INTO notified_lane (channel, kind, key)
        SELECT DISTINCT p_channel, a.k, a.y FROM unnest(p_kinds, p_keys) AS a(k, y)
        ORDER BY 2, 3
        ON CONFLICT (channel, kind, key) DO NOTHING;
    END IF;

    WITH a AS (
        SELECT k, y, ord, min(ord) OVER (PARTITION BY k, y) AS first
        FROM unnest(p_kinds, p_keys) WITH ORDINALITY AS a(k, y, ord)
    )
    SELECT coalesce(array_agg(l.head_job_id IS NULL AND l.stopped_job_id IS NULL AND a.ord = a.first ORDER BY a.ord), '{}')
    INTO heads
    FROM a JOIN notified_lane l ON l.channel = p_channel AND l.kind = a.k AND l.key = a.y;
    RETURN heads;
END
$fn$;

-- notified_lane_append appends jobs to their lanes, in the order given:
-- p_jobs[i] of kind p_kinds[i] to the lane of key p_keys[i] on channel
-- p_channel, stopping at its failure if p_stops[i]; p_heads[i] says it was
-- made available as its lane's head, the others are pending in River. It
-- is called in the transaction that opened the lanes with
-- notified_lane_open (which created and locked them) and made the jobs. A
-- lane left with no head gets its first job released. It returns how many
-- jobs it appended.
CREATE FUNCTION notified_lane_append(p_channel text, p_kinds text[], p_keys text[], p_stops boolean[], p_jobs bigint[],
    p_heads boolean[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    lane bigint;
    n    integer;
    ids  bigint[];
BEGIN
    -- The lanes, opened by notified_lane_open in this transaction: created
    -- and locked.
    SELECT array_agg(nl.id) INTO ids
    FROM (SELECT DISTINCT a.k, a.y FROM unnest(p_kinds, p_keys) AS a(k, y)) d
    JOIN notified_lane nl ON nl.channel = p_channel AND nl.kind = d.k AND nl.key = d.y;

    WITH a AS (
        SELECT nl.id AS lane_id, a.job, coalesce(a.stop, false) AS stop, coalesce(a.head, false) AS head, a.ord
        FROM unnest(p_kinds, p_keys, p_stops, p_jobs, p_heads) WITH ORDINALITY AS a(k, y, stop, job, head, ord)
        JOIN notified_lane nl ON nl.channel = p_channel AND nl.kind = a.k AND nl.key = a.y
    ), ins AS (
        INSERT INTO notified_lane_job (lane_id, job_id, stop)
        SELECT lane_id, job, stop FROM a ORDER BY ord
        RETURNING 1
    ), heads AS (
        UPDATE notified_lane nl SET head_job_id = a.job
        FROM a WHERE a.head AND nl.id = a.lane_id AND nl.head_job_id IS NULL AND nl.stopped_job_id IS NULL
    )
    SELECT count(*) INTO n FROM ins;

    FOR lane IN
        SELECT nl.id FROM notified_lane nl
        WHERE nl.id = ANY(ids) AND nl.head_job_id IS NULL AND nl.stopped_job_id IS NULL
        ORDER BY nl.kind, nl.key
    LOOP
        PERFORM notified_lane_advance(lane);
    END LOOP;
    RETURN n;
END
$fn$;

-- notified_lane_release moves on, at once, lanes p_lanes whose heads
-- p_jobs were finalized (or deleted) in states p_states ('deleted' for a
-- deleted head), the lanes locked by the caller: the finalizing trigger or
-- the lane waker. A completed (or deleted) head leaves its lane and the
-- next job waiting is released; a failed one goes through
-- notified_lane_advance, which goes on or stops and says so.
CREATE FUNCTION notified_lane_release(p_lanes bigint[], p_jobs bigint[], p_states text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    i        integer;
    lane     bigint;
    q        text;
    empty    bigint[]; -- lanes left with no job
    released bigint[]; -- lanes whose next job was released ...
    nexts    bigint[]; -- ... that job
    queues   text[];   -- the queues of the jobs released
    others   bigint[]; -- lanes whose next job was not waiting any more
BEGIN
    IF p_lanes IS NULL THEN
        RETURN;
    END IF;
    -- Failures: the lane goes on or stops, and says so.
    FOR i IN 1 .. array_length(p_lanes, 1) LOOP
        IF p_states[i] IN ('cancelled', 'discarded') THEN
            PERFORM notified_lane_advance(p_lanes[i], p_states[i]);
        END IF;
    END LOOP;

    -- The common case, for all the others at once: each head, its lane's
    -- first entry, leaves it, and the next job waiting is released.
    WITH c AS (
        SELECT h.lane, h.job FROM unnest(p_lanes, p_jobs, p_states) AS h(lane, job, state)
        WHERE h.state NOT IN ('cancelled', 'discarded')
    ), gone AS (
        DELETE FROM notified_lane_job e USING c
        WHERE e.lane_id = c.lane AND e.job_id = c.job
          AND e.position = (SELECT min(position) FROM notified_lane_job f WHERE f.lane_id = c.lane)
    ), nxt AS (
        -- The entry after the head: the head's own entry is still seen
        -- here (the delete above is not visible to this statement).
        SELECT c.lane, n.job_id
        FROM c LEFT JOIN LATERAL (
            SELECT f.job_id FROM notified_lane_job f
            WHERE f.lane_id = c.lane AND f.job_id <> c.job
            ORDER BY f.position LIMIT 1
        ) n ON true
    ), rel AS (
        UPDATE river_job j SET state = 'available'
        FROM nxt WHERE j.id = nxt.job_id AND j.state = 'pending'
        RETURNING j.id, j.queue
    )
    SELECT array_agg(nxt.lane) FILTER (WHERE nxt.job_id IS NULL),
        array_agg(nxt.lane) FILTER (WHERE rel.id IS NOT NULL),
        array_agg(nxt.job_id) FILTER (WHERE rel.id IS NOT NULL),
        array_agg(DISTINCT rel.queue) FILTER (WHERE rel.id IS NOT NULL),
        array_agg(nxt.lane) FILTER (WHERE nxt.job_id IS NOT NULL AND rel.id IS NULL)
    INTO empty, released, nexts, queues, others
    FROM nxt LEFT JOIN rel ON rel.id = nxt.job_id;

    -- A lane with no job left is gone; one whose next job was released
    -- has it as its head, and River's producers of its queue are told.
    DELETE FROM notified_lane WHERE id = ANY(coalesce(empty, '{}'));
    UPDATE notified_lane l SET head_job_id = r.job
    FROM unnest(released, nexts) AS r(lane, job)
    WHERE l.id = r.lane;
    FOREACH q IN ARRAY coalesce(queues, '{}') LOOP
        PERFORM pg_notify(current_schema() || '.river_insert', json_build_object('queue', q)::text);
    END LOOP;
    -- A next job not waiting any more (finalized, deleted or made
    -- available by hand): the general path sorts it out.
    FOREACH lane IN ARRAY coalesce(others, '{}') LOOP
        UPDATE notified_lane SET head_job_id = NULL WHERE id = lane;
        PERFORM notified_lane_advance(lane);
    END LOOP;
END
$fn$;

-- notified_lane_release_done moves on, with notified_lane_release, those
-- of lanes p_lanes (locked by the caller) whose head was finalized or
-- deleted, its state read from River, and returns them (NULL for none).
CREATE FUNCTION notified_lane_release_done(p_lanes bigint[]) RETURNS bigint[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    lanes  bigint[];
    jobs   bigint[];
    states text[];
BEGIN
    SELECT array_agg(l.id), array_agg(l.head_job_id), array_agg(coalesce(j.state::text, 'deleted'))
    INTO lanes, jobs, states
    FROM notified_lane l LEFT JOIN river_job j ON j.id = l.head_job_id
    WHERE l.id = ANY(p_lanes) AND l.head_job_id IS NOT NULL AND l.stopped_job_id IS NULL
      AND (j.id IS NULL OR j.state IN ('completed', 'cancelled', 'discarded'));
    PERFORM notified_lane_release(lanes, jobs, states);
    RETURN lanes;
END
$fn$;

-- notified_lane_wake_up advances the lanes left in notified_lane_wake
-- that no other transaction holds, and returns how many it advanced. It
-- never waits for a lane: a lane held by a dispatch (or by River's
-- finalizing transaction) keeps its wake row for the next call, which the
-- bridge makes when its dispatch commits, when it hears
-- <schema>.notified_lane, and every poll interval. Waiting would hold the
-- lanes it had already locked until the holder committed, and the next
-- dispatch, which locks the same lanes, would wait for it in turn.
CREATE FUNCTION notified_lane_wake_up() RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
    locked bigint[];
    moved  bigint[];
    lane   bigint;
BEGIN
    -- The lanes left so far that are free, locked in the order
    -- dispatches lock them (kind, key).
    SELECT array_agg(l.id) INTO locked
    FROM (
        SELECT l.id FROM notified_lane l
        WHERE l.id IN (SELECT w.lane_id FROM notified_lane_wake w)
        ORDER BY l.channel, l.kind, l.key
        FOR UPDATE SKIP LOCKED
    ) l;
    -- Their wake rows go, and those of lanes that are gone; a row added
    -- while this runs stays for the next call, which its notification
    -- brings.
    DELETE FROM notified_lane_wake w
    WHERE w.lane_id = ANY(coalesce(locked, '{}'))
       OR NOT EXISTS (SELECT 1 FROM notified_lane l WHERE l.id = w.lane_id);
    IF locked IS NULL THEN
        RETURN 0;
    END IF;

    -- Lanes whose head was finalized or deleted move on at once, as in
    -- the finalizing trigger.
    moved := notified_lane_release_done(locked);

    -- A lane with no head (its next job was not waiting any more) takes
    -- the general path; one whose head still runs is left as it is.
    FOR lane IN
        SELECT l.id FROM notified_lane l
        WHERE l.id = ANY(locked) AND l.head_job_id IS NULL AND l.stopped_job_id IS NULL
          AND NOT l.id = ANY(coalesce(moved, '{}'))
    LOOP
        PERFORM notified_lane_advance(lane);
    END LOOP;
    RETURN array_length(locked, 1);
END
$fn$;

-- notified_lane_jobs_done runs once per statement that finalizes (or
-- deletes) jobs of lanes, in that statement's transaction: River's
-- completer finalizes jobs in batches, and one set of statements moves all
-- their lanes on. lane_done is the statement's rows (new ones for an
-- update, old ones for a delete). For each job that is its lane's head, the
-- lane is locked, unless another transaction holds it: River's transaction
-- never waits for a lane, and a lane held by a dispatch is left to the
-- bridge (notified_lane_wake). The lanes it locked move on with
-- notified_lane_release.
CREATE FUNCTION notified_lane_jobs_done() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
    heads  bigint[];  -- lanes whose head this statement finalized, locked
    jobs   bigint[];  -- their heads
    states text[];    -- their heads' new states
    held   bigint[];  -- lanes whose head it finalized, held by another transaction
BEGIN
    WITH d AS (
        SELECT d.id, d.kind, d.metadata->'notified'->>'channel' AS channel, d.metadata->'notified'->>'lane' AS key,
            CASE WHEN TG_OP = 'DELETE' THEN 'deleted' ELSE d.state::text END AS state
        FROM lane_done d
        WHERE d.metadata->'notified' ? 'lane'
          AND (TG_OP = 'DELETE' OR d.state IN ('completed', 'cancelled', 'discarded'))
    ), locked AS (
        SELECT l.id AS lane, d.id AS job, d.state
        FROM d JOIN notified_lane l ON l.channel = d.channel AND l.kind = d.kind AND l.key = d.key AND l.head_job_id = d.id
        ORDER BY l.kind, l.key
        FOR UPDATE OF l SKIP LOCKED
    )
    SELECT array_agg(lane), array_agg(job), array_agg(state) INTO heads, jobs, states FROM locked;

    -- The heads whose lane another transaction holds (a dispatch
    -- appending to it): left to wake (see notified_lane_wake).
    SELECT array_agg(l.id) INTO held
    FROM lane_done d JOIN notified_lane l ON l.channel = d.metadata->'notified'->>'channel' AND l.kind = d.kind
        AND l.key = d.metadata->'notified'->>'lane' AND l.head_job_id = d.id
    WHERE d.metadata->'notified' ? 'lane'
      AND (TG_OP = 'DELETE' OR d.state IN ('completed', 'cancelled', 'discarded'))
      AND NOT l.id = ANY(coalesce(heads, '{}'));
    IF held IS NOT NULL THEN
        INSERT INTO notified_lane_wake (lane_id) SELECT unnest(held);
        PERFORM pg_notify(current_schema() || '.notified_lane', array_to_string(held, ','));
    END IF;
    IF heads IS NULL THEN
        RETURN NULL;
    END IF;

    PERFORM notified_lane_release(heads, jobs, states);
    RETURN NULL;
END
$fn$;

REVOKE ALL ON FUNCTION notified_lane_jobs_done() FROM PUBLIC;

CREATE TRIGGER notified_lane_jobs_finalized
    AFTER UPDATE ON river_job
    REFERENCING NEW TABLE AS lane_done
    FOR EACH STATEMENT
    EXECUTE FUNCTION notified_lane_jobs_done();

CREATE TRIGGER notified_lane_jobs_deleted
    AFTER DELETE ON river_job
    REFERENCING OLD TABLE AS lane_done
    FOR EACH STATEMENT
    EXECUTE FUNCTION notified_lane_jobs_done();
