-- Health monitoring: when each in-service integration is next due for a health check (and which
-- replica holds the check), and the history of every check. Times here are Unix milliseconds, so
-- that "due" and "since" compare the same way in both dialects.

CREATE TABLE health_schedule (
    integration_id TEXT PRIMARY KEY REFERENCES integrations (integration_id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    due_ms         INTEGER NOT NULL,
    -- The replica that leased the check, until when; a crashed replica's lease simply expires.
    lease_owner    TEXT,
    lease_until_ms INTEGER
);
CREATE INDEX health_schedule_due ON health_schedule (due_ms);

CREATE TABLE health_checks (
    check_id       TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations (integration_id) ON DELETE CASCADE,
    tenant_id      TEXT NOT NULL,
    checked_ms     INTEGER NOT NULL,
    -- healthy, degraded, unhealthy, or skipped (offline mode).
    outcome        TEXT NOT NULL,
    failure_class  TEXT,
    latency_ms     INTEGER NOT NULL,
    message        TEXT NOT NULL
);
CREATE INDEX health_checks_integration ON health_checks (integration_id, checked_ms);
CREATE INDEX health_checks_time ON health_checks (checked_ms);
