-- The reservation reconciler looks for prepaid reservations that nothing
-- closed (a submission answered EUNKNOWN whose workflow never started):
-- reserve steps older than a grace period, oldest first, each probed for
-- its close step through billing_ledger_step.
ALTER TABLE billing_ledger ADD INDEX billing_ledger_step_time (step, created_at, entry_key);
