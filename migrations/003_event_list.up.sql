-- Indexes for the web UI's list of events (history.Store.List), newest
-- dispatch first, filtered by name or by an outcome other than dispatched.
-- Each serves its filter in the list's order, so a page reads about as many
-- index entries as it shows, at any depth. The list without these filters,
-- or by time, uses notified_dispatch_dispatched_at.
--
-- Built without CONCURRENTLY: migrations run in one transaction, which
-- CREATE INDEX CONCURRENTLY cannot. The build holds a SHARE lock on
-- notified_dispatch, which blocks the bridge's dispatches (not the
-- producers: they write the outbox) while it lasts: about a second per
-- million dispatch records (docs/history.md). On a far larger table, create
-- them first by hand, with CREATE INDEX CONCURRENTLY and these names and
-- definitions: IF NOT EXISTS then makes this migration a no-op.
CREATE INDEX IF NOT EXISTS notified_dispatch_name
    ON notified_dispatch (channel, event_name, dispatched_at, event_id);

-- Few events are not dispatched (unrouted, missing, rejected): a small
-- index, the one the failed page reads.
CREATE INDEX IF NOT EXISTS notified_dispatch_not_dispatched
    ON notified_dispatch (channel, outcome, dispatched_at, event_id)
    WHERE outcome <> 'dispatched';

-- The jobs River has deleted that did not complete (discarded, cancelled):
-- few, and what the list's job-state filter looks for.
CREATE INDEX IF NOT EXISTS notified_job_trouble
    ON notified_job (channel, state, event_id)
    WHERE state <> 'completed';
