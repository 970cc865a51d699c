CREATE TABLE executions (
    run_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    agent_id uuid NOT NULL,
    agent_config_version integer NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    output text NOT NULL DEFAULT '',
    error text NOT NULL DEFAULT '',
    tokens_in bigint NOT NULL DEFAULT 0,
    tokens_out bigint NOT NULL DEFAULT 0,
    cost numeric(20, 8) NOT NULL DEFAULT 0,
    latency_ms integer NOT NULL DEFAULT 0,
    context_id uuid,
    correlation_id uuid NOT NULL,
    requested_at timestamptz NOT NULL,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX executions_by_tenant ON executions (tenant_id, requested_at, run_id);
CREATE INDEX executions_by_agent ON executions (tenant_id, agent_id, requested_at);
CREATE INDEX executions_by_status ON executions (tenant_id, status, requested_at);
CREATE INDEX executions_by_correlation ON executions (tenant_id, correlation_id);
