-- The plugin store (a platform concern, not a tenant's): connector components content-addressed by
-- sha256; the versions submitted, each pending, approved or rejected; the one active version of
-- each provider; and the platform's own append-only audit chain of who admitted which code. The
-- platform head chains that trail, numbers the platform's events (tenant id '' in the outbox, which
-- no token can carry) and counts changes of the active set, which replicas watch.

CREATE TABLE plugin_components (
    sha256    TEXT PRIMARY KEY,
    bytes     BLOB NOT NULL,
    size      INTEGER NOT NULL,
    stored_at TEXT NOT NULL
);

CREATE TABLE plugin_versions (
    provider           TEXT NOT NULL,
    version            TEXT NOT NULL,
    sha256             TEXT NOT NULL UNIQUE REFERENCES plugin_components (sha256),
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    manifest           TEXT NOT NULL,
    permissions        TEXT NOT NULL,
    permissions_digest TEXT NOT NULL,
    signatures         TEXT NOT NULL,
    signed_by          TEXT,
    unsigned_exception BOOLEAN NOT NULL,
    origin             TEXT NOT NULL,
    submitted_by       TEXT NOT NULL,
    submitted_at       TEXT NOT NULL,
    decided_by         TEXT,
    decided_at         TEXT,
    decision_reason    TEXT,
    PRIMARY KEY (provider, version)
);

CREATE TABLE plugin_active (
    provider     TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    activated_by TEXT NOT NULL,
    activated_at TEXT NOT NULL,
    FOREIGN KEY (provider, version) REFERENCES plugin_versions (provider, version)
);

CREATE TABLE platform_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq  INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  INTEGER NOT NULL,
    generation INTEGER NOT NULL
);
INSERT INTO platform_head (id, audit_seq, audit_hash, event_seq, generation)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

CREATE TABLE platform_audit (
    seq       INTEGER PRIMARY KEY,
    action    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    version   TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER platform_audit_no_update BEFORE UPDATE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only (UPDATE refused)');
END;
CREATE TRIGGER platform_audit_no_delete BEFORE DELETE ON platform_audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only (DELETE refused)');
END;
