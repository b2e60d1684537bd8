-- Message search and usage reports.
--
-- Search pages through messages newest accepted first (accepted_at DESC,
-- id DESC, the id taken from the primary key InnoDB keeps in every
-- secondary index). Each index below serves one filter with that order, so
-- the first page reads about a page of index entries whatever the table's
-- size (docs/search.md has the plans):
--   customer                 messages_customer_accepted (0001)
--   customer + status        messages_customer_status_accepted
--   customer + sender        messages_customer_src_accepted
--   customer + connector     messages_customer_connector_accepted
--   customer + client ref    messages_customer_ref_accepted
--   destination              messages_dst_accepted (0001)
--   every customer           messages_accepted, and the status and
--                            connector ones for those filters
CREATE INDEX messages_accepted ON messages (accepted_at, id);
CREATE INDEX messages_customer_status_accepted ON messages (customer_id, status, accepted_at, id);
CREATE INDEX messages_customer_src_accepted ON messages (customer_id, src, accepted_at, id);
CREATE INDEX messages_customer_connector_accepted ON messages (customer_id, connector_id, accepted_at, id);
CREATE INDEX messages_customer_ref_accepted ON messages (customer_id, client_ref, accepted_at, id);
CREATE INDEX messages_status_accepted ON messages (status, accepted_at, id);
CREATE INDEX messages_connector_accepted ON messages (connector_id, accepted_at, id);
DROP INDEX messages_status ON messages;

-- Usage: messages that reached a final status and their segments, per UTC
-- quarter-hour of acceptance (bucket is its start), customer, entry point,
-- connector and status. Every time zone's offset is a whole number of
-- quarter-hours, so a day in any zone is an exact sum of buckets. A
-- message is counted under the key its counted_* columns record, and moved,
-- never doubled, when a late update changes the key (as for daily_stats).
CREATE TABLE IF NOT EXISTS usage_buckets (
    bucket       DATETIME    NOT NULL,
    customer_id  VARCHAR(64) NOT NULL,
    entry_point  VARCHAR(16) NOT NULL,
    connector_id VARCHAR(64) NOT NULL,
    status       VARCHAR(16) NOT NULL,
    messages     BIGINT      NOT NULL DEFAULT 0,
    segments     BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, customer_id, entry_point, connector_id, status),
    INDEX usage_buckets_customer (customer_id, bucket)
) DEFAULT CHARSET = utf8mb4;

ALTER TABLE messages
    ADD COLUMN counted_bucket      DATETIME    NULL AFTER counted_connector,
    ADD COLUMN counted_entry_point VARCHAR(16) NOT NULL DEFAULT '' AFTER counted_bucket,
    ADD COLUMN counted_segments    INT         NOT NULL DEFAULT 0 AFTER counted_entry_point;

-- Messages counted before this migration are counted in usage_buckets too,
-- at the time daily_stats took (acceptance, else done, else last update).
UPDATE messages SET
    counted_bucket = DATE_FORMAT(COALESCE(accepted_at, done_at, updated_at), '%Y-%m-%d %H:00:00')
        + INTERVAL (MINUTE(COALESCE(accepted_at, done_at, updated_at)) DIV 15) * 15 MINUTE,
    counted_entry_point = entry_point,
    counted_segments = segments
WHERE counted_status <> '';

-- (Emptied first, so that a run of this migration cut short and run again
-- counts nothing twice: only this migration has written to the table yet.)
DELETE FROM usage_buckets;
INSERT INTO usage_buckets (bucket, customer_id, entry_point, connector_id, status, messages, segments)
SELECT counted_bucket, counted_customer, counted_entry_point, counted_connector, counted_status, COUNT(*), SUM(counted_segments)
FROM messages WHERE counted_status <> ''
GROUP BY counted_bucket, counted_customer, counted_entry_point, counted_connector, counted_status;
