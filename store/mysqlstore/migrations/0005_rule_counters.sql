-- The admission rules' counters, shared by every replica (the event store
-- of the MongoDB wire protocol, FerretDB, loses concurrent $inc updates).
-- velocity_counts: a velocity limit's count of one key (customer, limit,
-- number or range) in one window; traffic_counts: a customer's messages
-- to a destination prefix in one hour ('*': to every prefix), for the
-- pumping guard. Rows past expire_at are removed by ExpireRuleCounters.
CREATE TABLE IF NOT EXISTS velocity_counts (
	counter_key  VARCHAR(255) NOT NULL,
	bucket_start DATETIME     NOT NULL,
	n            BIGINT       NOT NULL,
	expire_at    DATETIME     NOT NULL,
	PRIMARY KEY (counter_key, bucket_start),
	KEY velocity_counts_expire_at (expire_at)
);
CREATE TABLE IF NOT EXISTS traffic_counts (
	customer_id VARCHAR(64) NOT NULL,
	hour_start  DATETIME    NOT NULL,
	prefix      VARCHAR(16) NOT NULL,
	n           BIGINT      NOT NULL,
	expire_at   DATETIME    NOT NULL,
	PRIMARY KEY (customer_id, hour_start, prefix),
	KEY traffic_counts_expire_at (expire_at)
);
