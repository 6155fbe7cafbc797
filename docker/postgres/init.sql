-- Runs once, when the postgres service initialises an empty data volume, in
-- the database named by POSTGRES_DB (app). It creates the application's
-- events table, as producers already have it; `notified-bridge setup`
-- (the setup service) then adds notified's schema and the capture trigger.
CREATE TABLE IF NOT EXISTS events (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    data       jsonb NOT NULL DEFAULT '{}',
    -- Read by the example worker's send_welcome_email handler, which mails
    -- the address in the row's email column.
    email      text,
    created_at timestamptz DEFAULT now()
);
