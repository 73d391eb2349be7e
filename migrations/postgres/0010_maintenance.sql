-- One maintenance task prunes every table that grows with time (the ledger, the health history,
-- the outbox, the console's sessions and spent links). Replicas share it through this row: the
-- one that takes the lease runs it, and it is next due an interval after it finished, so
-- replicas do not repeat each other's work.
CREATE TABLE maintenance (
    task             TEXT PRIMARY KEY,
    owner            TEXT,
    lease_until_ms   BIGINT NOT NULL,
    next_due_ms      BIGINT NOT NULL,
    last_finished_ms BIGINT
);
INSERT INTO maintenance (task, owner, lease_until_ms, next_due_ms, last_finished_ms) VALUES ('prune', NULL, 0, 0, NULL);
