-- Submissions refused before they became messages (by an admission rule or
-- for want of balance), per UTC quarter-hour of the refusal, customer and
-- reason (OPTED_OUT, CONTENT_REFUSED, INSUFFICIENT_BALANCE, …), for the
-- usage reports. A best-effort count: the gateway adds one where it
-- decides the refusal, and a failed write is logged, not retried.
CREATE TABLE IF NOT EXISTS usage_refusals (
    bucket      DATETIME    NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    reason      VARCHAR(64) NOT NULL,
    refusals    BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, customer_id, reason),
    INDEX usage_refusals_customer (customer_id, bucket)
) DEFAULT CHARSET = utf8mb4;
