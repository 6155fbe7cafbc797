DROP VIEW IF EXISTS notified_history;
DROP VIEW IF EXISTS notified_jobs;
DROP TABLE IF EXISTS notified_bridge;
DROP TABLE IF EXISTS notified_replay;
DROP TRIGGER IF EXISTS notified_record_job ON river_job;
DROP FUNCTION IF EXISTS notified_record_job();
DROP TABLE IF EXISTS notified_job;
