-- Keep the configuration as the JSON text the service wrote, like SQLite does: JSONB cannot hold
-- the character U+0000, which JSON allows, and nothing queries inside the configuration.
ALTER TABLE integrations ALTER COLUMN configuration TYPE TEXT USING configuration::text;
