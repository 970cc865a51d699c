-- One AES-256 key per data subject of a tenant (crypto-shredding, ADR 0008). Personal fields of the
-- events about a subject are sealed with its key; erasing the subject sets `key` to NULL and stamps
-- `erased_at`. The row stays as a tombstone, so a later write about the subject is refused rather than
-- sealed under a new key. The subject is a pseudonymous id, never personal data itself.
CREATE TABLE subject_keys (
    tenant_id text NOT NULL,
    subject text NOT NULL,
    key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at timestamptz,
    PRIMARY KEY (tenant_id, subject),
    CONSTRAINT subject_keys_key_or_tombstone CHECK ((key IS NULL) = (erased_at IS NOT NULL)),
    CONSTRAINT subject_keys_key_length CHECK (key IS NULL OR octet_length(key) = 32)
);

-- The platform's role makes keys and erases them (an UPDATE to the tombstone); it never deletes a row.
DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        GRANT SELECT, INSERT, UPDATE ON subject_keys TO aiwp_app;
    END IF;
END
$migration$;
