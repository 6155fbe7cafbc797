ALTER TABLE notified_replay DROP COLUMN IF EXISTS ignore_filters;
ALTER TABLE notified_route DROP COLUMN IF EXISTS filter_path;
