CREATE TABLE workflow_instances (
    instance_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    template_id uuid NOT NULL,
    template_name text NOT NULL,
    template_version integer NOT NULL,
    status text NOT NULL,
    inputs jsonb NOT NULL,
    reason text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX workflow_instances_by_tenant ON workflow_instances (tenant_id, started_at, instance_id);
CREATE INDEX workflow_instances_by_status ON workflow_instances (tenant_id, status, started_at);
CREATE INDEX workflow_instances_by_template ON workflow_instances (tenant_id, template_id, started_at);
