-- Routes: events named event_name become one River job of kind kind each.
CREATE TABLE notified_route (
    event_name   text        NOT NULL CHECK (event_name <> ''),
    kind         text        NOT NULL CHECK (kind <> '' AND char_length(kind) < 128),
    queue        text        NOT NULL DEFAULT 'default'
        CHECK (length(queue) <= 64 AND queue ~ '^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$'),
    priority     smallint    NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 4),
    max_attempts smallint    NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_name, kind)
);

-- Outbox: one row per event still to dispatch, written by the capture trigger
-- in the producer's transaction (or by the bridge for a hand-sent NOTIFY).
-- The bridge deletes rows as it dispatches them, so the table holds only the
-- backlog.
-- The primary key serves the claim (oldest rows of a channel first, LIMIT n),
-- so one claim reads about n index entries whatever the backlog. No other
-- index: each costs the producers on every insert.
CREATE TABLE notified_outbox (
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    channel      text        NOT NULL,
    event_id     text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    available_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, seq)
);

-- Dispatch: one row per (channel, event) ever handled, whatever the outcome.
-- Its primary key is what makes dispatch exactly once.
CREATE TABLE notified_dispatch (
    channel       text        NOT NULL,
    event_id      text        NOT NULL,
    event_name    text,
    outcome       text        NOT NULL
        CHECK (outcome IN ('dispatched', 'unrouted', 'missing', 'rejected')),
    reason        text,
    jobs          jsonb       NOT NULL DEFAULT '[]',
    notified_at   timestamptz NOT NULL,
    dispatched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, event_id)
);

CREATE INDEX notified_dispatch_dispatched_at ON notified_dispatch (dispatched_at);
