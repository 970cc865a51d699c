-- An agent's own endpoint, its chain of fallback providers, and whether it asks for JSON output.
ALTER TABLE agents ADD COLUMN base_url text;
ALTER TABLE agents ADD COLUMN fallbacks jsonb NOT NULL DEFAULT '[]';
ALTER TABLE agents ADD COLUMN json_output boolean NOT NULL DEFAULT false;
