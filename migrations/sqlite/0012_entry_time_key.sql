-- An entry is unique by (id, time), as on PostgreSQL, whose day partitions need the time in every
-- unique key: the ledger's writes name the same conflict target on both databases.
CREATE UNIQUE INDEX invocations_id_time ON invocations (invocation_id, at_ms);
