-- The invocation ledger: the record of every connector invocation (tests and health checks), with
-- the facts a security team filters on (origins contacted, AuthRefs used, denial kinds) drawn out
-- of it as JSON arrays of strings. No foreign key to the integration: the ledger keeps what
-- happened after an integration is deleted, until its retention ends. Times are Unix milliseconds.

CREATE TABLE invocations (
    invocation_id   TEXT COLLATE "C" PRIMARY KEY,
    tenant_id       TEXT COLLATE "C" NOT NULL,
    integration_id  TEXT COLLATE "C" NOT NULL,
    provider        TEXT COLLATE "C" NOT NULL,
    sha256          TEXT NOT NULL,
    operation       TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    denied          BOOLEAN NOT NULL,
    denial_kinds    TEXT NOT NULL,
    origins         TEXT NOT NULL,
    auth_refs       TEXT NOT NULL,
    revealed_secret BOOLEAN NOT NULL,
    signed_jwt      BOOLEAN NOT NULL,
    record          TEXT NOT NULL
);
-- Newest first per tenant (the cursor is at_ms, invocation_id), per provider, and by age (pruning).
CREATE INDEX invocations_tenant_time ON invocations (tenant_id, at_ms, invocation_id);
CREATE INDEX invocations_provider_time ON invocations (provider, at_ms, invocation_id);
CREATE INDEX invocations_time ON invocations (at_ms);
