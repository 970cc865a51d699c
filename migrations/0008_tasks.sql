-- The steps of each workflow instance.
CREATE TABLE tasks (
    instance_id uuid NOT NULL,
    step_id text NOT NULL,
    tenant_id text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    output jsonb,
    error text NOT NULL DEFAULT '',
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (instance_id, step_id)
);
CREATE INDEX tasks_by_status ON tasks (tenant_id, status);
