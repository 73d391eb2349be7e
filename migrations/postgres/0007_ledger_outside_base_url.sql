-- Whether an invocation contacted an origin other than its integration's base URL's (one its
-- manifest declares): "which connectors reached beyond their base URL". Entries kept before this
-- column existed say no.
ALTER TABLE invocations ADD COLUMN outside_base_url BOOLEAN NOT NULL DEFAULT FALSE;
