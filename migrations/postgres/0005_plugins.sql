-- The plugin store (a platform concern, not a tenant's): connector components content-addressed by
-- sha256; the versions submitted, each pending, approved or rejected; the one active version of
-- each provider; and the platform's own append-only audit chain of who admitted which code. The
-- platform head chains that trail, numbers the platform's events (tenant id '' in the outbox, which
-- no token can carry) and counts changes of the active set, which replicas watch.

CREATE TABLE plugin_components (
    sha256    TEXT COLLATE "C" PRIMARY KEY,
    bytes     BYTEA NOT NULL,
    size      BIGINT NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE plugin_versions (
    provider           TEXT COLLATE "C" NOT NULL,
    version            TEXT COLLATE "C" NOT NULL,
    sha256             TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES plugin_components (sha256),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    manifest           TEXT NOT NULL,
    permissions        TEXT NOT NULL,
    permissions_digest TEXT NOT NULL,
    signatures         TEXT NOT NULL,
    signed_by          TEXT,
    unsigned_exception BOOLEAN NOT NULL,
    origin             TEXT NOT NULL,
    submitted_by       TEXT NOT NULL,
    submitted_at       TIMESTAMPTZ NOT NULL,
    decided_by         TEXT,
    decided_at         TIMESTAMPTZ,
    decision_reason    TEXT,
    PRIMARY KEY (provider, version)
);

CREATE TABLE plugin_active (
    provider     TEXT COLLATE "C" PRIMARY KEY,
    version      TEXT COLLATE "C" NOT NULL,
    activated_by TEXT NOT NULL,
    activated_at TIMESTAMPTZ NOT NULL,
    FOREIGN KEY (provider, version) REFERENCES plugin_versions (provider, version)
);

CREATE TABLE platform_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq  BIGINT NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  BIGINT NOT NULL,
    generation BIGINT NOT NULL
);
INSERT INTO platform_head (id, audit_seq, audit_hash, event_seq, generation)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

CREATE TABLE platform_audit (
    seq       BIGINT PRIMARY KEY,
    action    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    version   TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER platform_audit_no_update BEFORE UPDATE OR DELETE ON platform_audit
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER platform_audit_no_truncate BEFORE TRUNCATE ON platform_audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
