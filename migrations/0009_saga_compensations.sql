-- The compensation plan of each instance that unwound, and how far it got.
CREATE TABLE saga_compensations (
    instance_id uuid NOT NULL,
    step_id text NOT NULL,
    tenant_id text NOT NULL,
    plan_index integer NOT NULL,
    failed_step text NOT NULL,
    reason text NOT NULL,
    status text NOT NULL CHECK (status IN ('planned', 'compensated')),
    planned_at timestamptz NOT NULL,
    compensated_at timestamptz,
    PRIMARY KEY (instance_id, step_id)
);
