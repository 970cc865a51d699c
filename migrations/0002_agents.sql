CREATE TABLE agents (
    agent_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    system_prompt text NOT NULL,
    temperature double precision NOT NULL,
    max_tokens integer NOT NULL,
    config_version integer NOT NULL,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX agents_by_tenant ON agents (tenant_id, created_at, agent_id);
