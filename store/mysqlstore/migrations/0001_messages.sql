-- One row per message, updated as the message moves. Times are UTC.
-- status_rank mirrors smsgw.Status.Rank so that an update never moves a
-- message backwards. The counted_* columns say under which daily_stats row
-- the message is counted (counted_status = '' while it is not), so a count is
-- moved, never doubled, when a late update fills in the customer or route.
CREATE TABLE IF NOT EXISTS messages (
    id            VARCHAR(64)  NOT NULL,
    customer_id   VARCHAR(64)  NOT NULL DEFAULT '',
    entry_point   VARCHAR(16)  NOT NULL DEFAULT '',
    src           VARCHAR(32)  NOT NULL DEFAULT '',
    dst           VARCHAR(32)  NOT NULL DEFAULT '',
    status        VARCHAR(16)  NOT NULL DEFAULT '',
    status_rank   TINYINT      NOT NULL DEFAULT 0,
    connector_id  VARCHAR(64)  NOT NULL DEFAULT '',
    upstream_id   VARCHAR(128) NOT NULL DEFAULT '',
    segments      INT          NOT NULL DEFAULT 0,
    encoding      VARCHAR(16)  NOT NULL DEFAULT '',
    error_code    VARCHAR(64)  NOT NULL DEFAULT '',
    error_text    VARCHAR(512) NOT NULL DEFAULT '',
    accepted_at   DATETIME(6)  NULL,
    sent_at       DATETIME(6)  NULL,
    done_at       DATETIME(6)  NULL,
    updated_at    DATETIME(6)  NOT NULL,
    counted_status    VARCHAR(16) NOT NULL DEFAULT '',
    counted_day       DATE        NULL,
    counted_customer  VARCHAR(64) NOT NULL DEFAULT '',
    counted_connector VARCHAR(64) NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    INDEX messages_customer_accepted (customer_id, accepted_at),
    INDEX messages_dst_accepted (dst, accepted_at),
    INDEX messages_status (status)
) DEFAULT CHARSET = utf8mb4;

-- Messages that reached a final status, per UTC day of acceptance, customer,
-- connector and status.
CREATE TABLE IF NOT EXISTS daily_stats (
    day          DATE        NOT NULL,
    customer_id  VARCHAR(64) NOT NULL,
    connector_id VARCHAR(64) NOT NULL,
    status       VARCHAR(16) NOT NULL,
    `count`      BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (day, customer_id, connector_id, status)
) DEFAULT CHARSET = utf8mb4;
