-- The customer's own reference for a message (clientRef at submission), at
-- most 64 characters; '' when none was given. Applied once, under the
-- migration lock, so it needs no IF NOT EXISTS (which MySQL lacks here).
ALTER TABLE messages ADD COLUMN client_ref VARCHAR(64) NOT NULL DEFAULT '' AFTER encoding;
