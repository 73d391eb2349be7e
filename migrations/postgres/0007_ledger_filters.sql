-- What a security team also filters the ledger on: whether an invocation contacted an origin other
-- than its integration's base URL's (one its manifest declares: "which connectors reached beyond
-- their base URL"), and the failure class of a failed test or of a check that was not healthy.
-- Entries kept before these columns existed say no, and have no class.
ALTER TABLE invocations ADD COLUMN outside_base_url BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE invocations ADD COLUMN failure_class TEXT;
