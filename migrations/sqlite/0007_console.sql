-- The console's sign-ins. A session is a row; its cookie holds a random value and the row only
-- that value's SHA-256, so a copy of the database signs nobody in. Expired rows are pruned.
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    subject      TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX console_sessions_subject ON console_sessions (tenant_id, subject, created_ms);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_ms);

-- One-time sign-in links already used, by their id, until they expire.
CREATE TABLE console_used_links (
    link_id    TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
