-- Route filters: a route with a filter makes a job only for the events whose
-- row matches it. The filter is a jsonpath predicate (e.g. $.total > 1000),
-- evaluated by the bridge's dispatch transaction on the row as jsonb, the
-- same JSON the handler receives; NULL: every event of the name. It is kept
-- as written (jsonpath would store it rewritten, $."total" > 1000) and the
-- CHECK makes the server parse it as it is stored; that it is a predicate
-- is checked as the route is added (routes.Store).
ALTER TABLE notified_route ADD COLUMN filter_path text
    CHECK (filter_path IS NULL OR (filter_path <> '' AND filter_path::jsonpath IS NOT NULL));

-- A replay applies today's route filters unless told to ignore them; its
-- record says which.
ALTER TABLE notified_replay ADD COLUMN ignore_filters boolean NOT NULL DEFAULT false;
