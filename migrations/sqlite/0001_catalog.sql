-- The catalog: integrations, their append-only audit chain, the event outbox, the latest test
-- result of each integration, and idempotency keys. Ids are UUID text; times are RFC 3339 UTC text.

CREATE TABLE integrations (
    integration_id       TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    integration_type     TEXT NOT NULL,
    provider             TEXT NOT NULL,
    base_url             TEXT,
    auth_ref             TEXT,
    configuration        TEXT NOT NULL,
    environment          TEXT,
    tags                 TEXT NOT NULL,
    owner_id             TEXT,
    status               TEXT NOT NULL,
    paused               BOOLEAN NOT NULL,
    pause_reason         TEXT,
    pause_ticket         TEXT,
    last_tested_at       TEXT,
    last_test_success    BOOLEAN,
    consecutive_failures INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    modified_at          TEXT,
    modified_by          TEXT,
    version              INTEGER NOT NULL,
    CONSTRAINT integrations_tenant_name UNIQUE (tenant_id, name)
);
CREATE INDEX integrations_tenant_order ON integrations (tenant_id, name, integration_id);

-- One row per tenant, written by every mutation of that tenant: it chains the tenant's audit
-- entries and numbers its events without gaps, in commit order.
CREATE TABLE tenant_heads (
    tenant_id  TEXT PRIMARY KEY,
    audit_seq  INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  INTEGER NOT NULL
);

CREATE TABLE audit_entries (
    tenant_id      TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    integration_id TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    at             TEXT NOT NULL,
    details        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_entries_integration ON audit_entries (tenant_id, integration_id, seq);

-- The audit trail is append-only in the database itself.
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only (UPDATE refused)');
END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only (DELETE refused)');
END;

CREATE TABLE events (
    tenant_id      TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    at             TEXT NOT NULL,
    cloud_event    TEXT NOT NULL,
    delivered_at   TEXT,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX events_undelivered ON events (at) WHERE delivered_at IS NULL;

CREATE TABLE test_results (
    integration_id TEXT PRIMARY KEY REFERENCES integrations (integration_id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    at             TEXT NOT NULL,
    result         TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
