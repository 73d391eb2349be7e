-- Whether an invocation sent the value of a secret it held outside the credential the host wrote
-- (in a URL, a header of its own or a body): refused for a connector that may not reveal secrets,
-- kept as a fact for one that may. Entries kept before this column existed say no.
ALTER TABLE invocations ADD COLUMN secret_in_request BOOLEAN NOT NULL DEFAULT FALSE;
