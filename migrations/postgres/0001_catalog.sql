-- The catalog: integrations, their append-only audit chain, the event outbox, the latest test
-- result of each integration, and idempotency keys. Ids are UUID text; every time is UTC. Names and
-- ids sort bytewise (COLLATE "C") so that list order and cursors match SQLite's and never depend
-- on the server's locale.

CREATE TABLE integrations (
    integration_id       TEXT COLLATE "C" PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL,
    description          TEXT,
    integration_type     TEXT NOT NULL,
    provider             TEXT NOT NULL,
    base_url             TEXT,
    auth_ref             TEXT,
    configuration        JSONB NOT NULL,
    environment          TEXT,
    tags                 JSONB NOT NULL,
    owner_id             TEXT,
    status               TEXT NOT NULL,
    paused               BOOLEAN NOT NULL,
    pause_reason         TEXT,
    pause_ticket         TEXT,
    last_tested_at       TIMESTAMPTZ,
    last_test_success    BOOLEAN,
    consecutive_failures BIGINT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    created_by           TEXT NOT NULL,
    modified_at          TIMESTAMPTZ,
    modified_by          TEXT,
    version              BIGINT NOT NULL,
    CONSTRAINT integrations_tenant_name UNIQUE (tenant_id, name)
);
CREATE INDEX integrations_tenant_order ON integrations (tenant_id, name, integration_id);

-- One row per tenant, locked by every mutation of that tenant: it serialises the tenant's audit
-- chain and numbers its events without gaps, in commit order.
CREATE TABLE tenant_heads (
    tenant_id  TEXT PRIMARY KEY,
    audit_seq  BIGINT NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  BIGINT NOT NULL
);

CREATE TABLE audit_entries (
    tenant_id      TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    integration_id TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor          TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    details        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_entries_integration ON audit_entries (tenant_id, integration_id, seq);

-- The audit trail is append-only in the database itself.
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();

CREATE TABLE events (
    tenant_id      TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    event_id       TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    cloud_event    TEXT NOT NULL,
    delivered_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX events_undelivered ON events (at) WHERE delivered_at IS NULL;

CREATE TABLE test_results (
    integration_id TEXT PRIMARY KEY REFERENCES integrations (integration_id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    result         TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
