-- Workflow templates: the current version of each definition.
CREATE TABLE workflows (
    template_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    template_version integer NOT NULL,
    definition jsonb NOT NULL,
    retired boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX workflows_by_tenant_name ON workflows (tenant_id, name);
