-- Usage reports sum what the counted messages were charged: usage_buckets
-- gains the currency to its key and the sum of cost_micros, and a message
-- records the currency and cost it is counted with (counted_currency,
-- counted_cost_micros). A charge recorded after the final status (or
-- corrected) changes the message's key, and the count moves with it as it
-- does for a late connector, so every charge is summed exactly once.
-- Unbilled messages are counted under currency ''.
ALTER TABLE usage_buckets ADD COLUMN currency CHAR(3) NOT NULL DEFAULT '' AFTER `status`;
ALTER TABLE usage_buckets ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0 AFTER segments;
ALTER TABLE usage_buckets DROP PRIMARY KEY;
ALTER TABLE usage_buckets ADD PRIMARY KEY (bucket, customer_id, entry_point, connector_id, `status`, currency);

ALTER TABLE messages
    ADD COLUMN counted_currency    CHAR(3) NOT NULL DEFAULT '' AFTER counted_segments,
    ADD COLUMN counted_cost_micros BIGINT  NOT NULL DEFAULT 0 AFTER counted_currency;

-- Messages already in usage_buckets are counted with their charge, and the
-- buckets summed again from them (as 0003 did: every message in the table
-- has its counted_bucket, so emptying it first loses nothing and makes a
-- run cut short safe to repeat).
UPDATE messages SET counted_currency = currency, counted_cost_micros = cost_micros
WHERE counted_bucket IS NOT NULL;

DELETE FROM usage_buckets;
INSERT INTO usage_buckets (bucket, customer_id, entry_point, connector_id, status, currency, messages, segments, cost_micros)
SELECT counted_bucket, counted_customer, counted_entry_point, counted_connector, counted_status, counted_currency,
    COUNT(*), SUM(counted_segments), SUM(counted_cost_micros)
FROM messages WHERE counted_bucket IS NOT NULL AND counted_status <> ''
GROUP BY counted_bucket, counted_customer, counted_entry_point, counted_connector, counted_status, counted_currency;
