-- A month's partition gets its TRUNCATE guard from the schema where the guard function lives, not from the
-- partitioned table's schema: so the same helper also serves a rebuild's shadow copy of the trail
-- (`aiwp replay projection audit_events --verify`), which has the table but not the function.
CREATE OR REPLACE FUNCTION audit_ensure_partition(at timestamptz) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $body$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition_name text := 'audit_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
    parent_schema text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE c.oid = 'audit_events'::regclass);
    guard_schema text := (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE p.oid = 'audit_events_refuse_change'::regproc);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF to_regclass(format('%I.%I', parent_schema, partition_name)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.audit_events FOR VALUES FROM (%L) TO (%L)',
                   parent_schema, partition_name, parent_schema, month_start, month_start + interval '1 month');
    EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I.%I'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION %I.audit_events_refuse_change()',
                   parent_schema, partition_name, guard_schema);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO aiwp_app', parent_schema, partition_name);
    END IF;
END
$body$;
