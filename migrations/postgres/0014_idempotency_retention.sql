-- `Idempotency-Key`s are remembered for 24 hours, then pruned by the maintenance task, by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
