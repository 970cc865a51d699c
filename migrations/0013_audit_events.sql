-- The immutable audit trail: every event, hash-chained, append-only.
-- A TimescaleDB hypertable where the extension is available, native monthly range partitions otherwise.
DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$migration$;

CREATE TABLE audit_events (
    position bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    event_id uuid NOT NULL,
    stream_id uuid NOT NULL,
    stream_version integer NOT NULL,
    type text NOT NULL,
    context text NOT NULL,
    tenant_id text NOT NULL,
    actor text NOT NULL,
    correlation_id uuid NOT NULL,
    causation_id uuid NOT NULL,
    canonical bytea NOT NULL,   -- the exact bytes that were hashed (JSON)
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (position, occurred_at)
) PARTITION BY RANGE (occurred_at);

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- A hypertable cannot be made from a partitioned table: recreate it plain, then convert it.
        CREATE TABLE audit_events_plain (LIKE audit_events INCLUDING ALL);
        DROP TABLE audit_events;
        ALTER TABLE audit_events_plain RENAME TO audit_events;
        ALTER TABLE audit_events ADD PRIMARY KEY (position, occurred_at);
        PERFORM create_hypertable('audit_events', 'occurred_at', chunk_time_interval => interval '1 month');
    END IF;
END
$migration$;

CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, occurred_at);
CREATE INDEX audit_events_by_stream ON audit_events (stream_id, stream_version);
CREATE INDEX audit_events_by_correlation ON audit_events (correlation_id);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$body$;

CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Creates the month's partition (with its own TRUNCATE guard: statement triggers are not inherited).
-- Security definer, so that the platform's role may call it without the right to create tables.
CREATE FUNCTION audit_ensure_partition(at timestamptz) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $body$
DECLARE
    month_start timestamptz := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition_name text := 'audit_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
    parent_schema text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE c.oid = 'audit_events'::regclass);
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
                   parent_schema, partition_name, parent_schema);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO aiwp_app', parent_schema, partition_name);
    END IF;
END
$body$;

-- How long each tenant's trail is kept, and the reports made from it.
CREATE TABLE retention_policies (
    tenant_id text PRIMARY KEY,
    keep_months integer NOT NULL CHECK (keep_months > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE compliance_reports (
    report_id uuid PRIMARY KEY,
    tenant_id text,
    framework text NOT NULL,
    from_position bigint NOT NULL,
    to_position bigint NOT NULL,
    row_count bigint NOT NULL,
    chain_head bytea NOT NULL,
    location text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The platform's role may read the trail and add to it, nothing else.
DO $migration$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        CREATE ROLE aiwp_app NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role aiwp_app here; create it and grant it as docs/operations.md says';
END
$migration$;

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO aiwp_app', current_schema());
        REVOKE ALL ON audit_events FROM aiwp_app;
        GRANT SELECT, INSERT ON audit_events TO aiwp_app;
        GRANT EXECUTE ON FUNCTION audit_ensure_partition(timestamptz) TO aiwp_app;
        GRANT SELECT ON retention_policies, compliance_reports TO aiwp_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON relay_positions, projection_positions, agents, executions, contexts,
            token_usage, token_usage_runs, workflows, workflow_instances, tasks, saga_compensations,
            validation_rules, scoring_models, validation_results TO aiwp_app;
    END IF;
END
$migration$;
