-- The first answer to each POST sent with an Idempotency-Key, kept 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id text NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('running', 'done')),
    status_code integer,
    body bytea,
    headers jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO aiwp_app;
    END IF;
END
$migration$;
