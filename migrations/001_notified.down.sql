DROP TABLE IF EXISTS notified_dispatch;
DROP TABLE IF EXISTS notified_outbox;
DROP TABLE IF EXISTS notified_route;
