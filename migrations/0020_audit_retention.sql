-- What `aiwp audit retention apply` dropped from the audit trail, and the chain head at each cut, so that
-- `aiwp audit verify` starts from the cut: the first row kept links (prev_hash) to `last_hash`.
-- Append-only, like the trail itself (docs/adr/0009-audit-checkpoints-and-retention.md).
CREATE TABLE audit_retention_log (
    cut_id bigserial PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    partition_name text NOT NULL,           -- the partition (or TimescaleDB chunk) dropped
    range_start timestamptz NOT NULL,       -- the months of occurred_at it held
    range_end timestamptz NOT NULL,
    rows_dropped bigint NOT NULL,
    first_position bigint,                  -- null when it held no row
    last_position bigint,
    last_hash bytea,                        -- the hash of its last row: the chain head at the cut
    first_kept_position bigint,             -- the first row kept after the cut (null: none was left)
    policy jsonb NOT NULL                   -- the retention_policies rows that allowed it
);

CREATE FUNCTION audit_retention_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'audit_retention_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$body$;

CREATE TRIGGER audit_retention_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_retention_log
    FOR EACH ROW EXECUTE FUNCTION audit_retention_log_refuse_change();
CREATE TRIGGER audit_retention_log_no_truncate BEFORE TRUNCATE ON audit_retention_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_retention_log_refuse_change();

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        GRANT SELECT ON audit_retention_log TO aiwp_app;
    END IF;
END
$migration$;
