DROP INDEX IF EXISTS notified_job_trouble;
DROP INDEX IF EXISTS notified_dispatch_not_dispatched;
DROP INDEX IF EXISTS notified_dispatch_name;
