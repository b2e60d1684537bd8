-- Messages held for review, for the operators' list: a message's row
-- carries its hold (when, until when, the rule and the reason) from the
-- moment it is held until it is released, rejected or cancelled. The
-- list reads the rows still ACCEPTED with a hold, oldest hold first.
ALTER TABLE messages
    ADD COLUMN held_at     DATETIME(6)  NULL,
    ADD COLUMN hold_until  DATETIME(6)  NULL,
    ADD COLUMN hold_rule   VARCHAR(128) NOT NULL DEFAULT '',
    ADD COLUMN hold_reason VARCHAR(512) NOT NULL DEFAULT '',
    ADD INDEX messages_held (held_at, id),
    ADD INDEX messages_customer_held (customer_id, held_at, id);
