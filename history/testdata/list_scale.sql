-- A history of 1,000,000 events for TestListAtScale (docs/history.md, "In
-- the browser"), in a database migrated with `notified-bridge migrate`:
--
--   createdb listscale
--   DATABASE_URL=postgres://.../listscale notified-bridge migrate
--   psql postgres://.../listscale -v ON_ERROR_STOP=1 -f history/testdata/list_scale.sql
--   TEST_LIST_SCALE_URL=postgres://.../listscale go test ./history -run TestListAtScale -v
--
-- Channel "events", one event every 2.6 s over 30 days. Names name_0 to
-- name_19 (5 % each) and refund_issued (0.05 %). Outcomes: 0.5 % unrouted,
-- 0.3 % missing, 0.2 % rejected, the rest dispatched, each to handler_0 to
-- handler_4 (20 % each) and to big_order_alert, whose route filter skipped
-- 99 % of them. The jobs are recorded as River's cleaner left them
-- (notified_job; River holds none): 0.4 % discarded, the rest completed.
-- Nothing is analyzed: the figures "no statistics" are read right after
-- it; run ANALYZE for the others.
BEGIN;
INSERT INTO notified_dispatch (channel, event_id, event_name, outcome, reason, jobs, notified_at, dispatched_at)
SELECT 'events', g::text, e.name, e.outcome,
    CASE WHEN e.outcome <> 'dispatched' THEN 'generated' END,
    CASE WHEN e.outcome = 'dispatched' THEN jsonb_build_array(
        jsonb_build_object('kind', 'handler_' || g % 5, 'queue', 'default', 'priority', 1, 'max_attempts', 25),
        jsonb_build_object('kind', 'big_order_alert', 'queue', 'default', 'priority', 1, 'max_attempts', 25,
            'where', '$.total > 1000') || CASE WHEN g % 100 <> 0 THEN '{"skipped": "filter"}'::jsonb ELSE '{}' END)
    ELSE '[]' END,
    e.at, e.at
FROM generate_series(1, 1000000) g
CROSS JOIN LATERAL (SELECT
    CASE WHEN g % 2000 = 0 THEN 'refund_issued' ELSE 'name_' || g % 20 END AS name,
    CASE WHEN g % 1000 < 5 THEN 'unrouted' WHEN g % 1000 < 8 THEN 'missing'
         WHEN g % 1000 < 10 THEN 'rejected' ELSE 'dispatched' END AS outcome,
    now() - (1000000 - g) * interval '2.6 seconds' AS at) e;

-- One job per dispatched event and route that made one.
INSERT INTO notified_job (job_id, channel, event_id, event_name, kind, queue, state, attempt, max_attempts,
    created_at, attempted_at, finalized_at)
SELECT row_number() OVER (ORDER BY d.dispatched_at), d.channel, d.event_id, d.event_name, r->>'kind', 'default',
    CASE WHEN d.event_id::bigint % 250 = 0 THEN 'discarded' ELSE 'completed' END, 1, 25,
    d.dispatched_at, d.dispatched_at, d.dispatched_at + interval '1 second'
FROM notified_dispatch d CROSS JOIN LATERAL jsonb_array_elements(d.jobs) r
WHERE d.channel = 'events' AND NOT r ? 'skipped';
COMMIT;
