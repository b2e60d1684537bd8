-- Billing: a ledger of balance movements and the balances they add up to.
-- Every movement has a unique (entry_key, step): a message is reserved for
-- once and closed (settled or released) once, a top-up applied once per
-- reference, however often the step is retried and by however many
-- processes. A balances row changes only in the transaction that inserts a
-- new movement, by exactly that movement, so for every customer and
-- currency balance_micros = SUM(amount_micros) and reserved_micros =
-- SUM(reserved_micros) of its movements. Amounts are integer micro-units.
CREATE TABLE IF NOT EXISTS billing_ledger (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    customer_id     VARCHAR(64)  NOT NULL,
    currency        CHAR(3)      NOT NULL,
    entry_key       VARCHAR(160) NOT NULL,
    step            VARCHAR(16)  NOT NULL,
    kind            VARCHAR(16)  NOT NULL,
    amount_micros   BIGINT       NOT NULL,
    reserved_micros BIGINT       NOT NULL,
    segments        INT          NOT NULL DEFAULT 0,
    created_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY billing_ledger_step (entry_key, step),
    INDEX billing_ledger_customer (customer_id, currency, created_at)
) DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS billing_balances (
    customer_id     VARCHAR(64) NOT NULL,
    currency        CHAR(3)     NOT NULL,
    balance_micros  BIGINT      NOT NULL DEFAULT 0,
    reserved_micros BIGINT      NOT NULL DEFAULT 0,
    updated_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (customer_id, currency)
) DEFAULT CHARSET = utf8mb4;

-- What the message was charged when it was settled, for usage reports.
ALTER TABLE messages ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0 AFTER client_ref;
ALTER TABLE messages ADD COLUMN currency CHAR(3) NOT NULL DEFAULT '' AFTER cost_micros;
