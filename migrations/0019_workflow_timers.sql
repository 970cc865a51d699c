-- Durable wake-ups of workflow instances (step deadlines, backoffs, deferrals): a timer that came due
-- while every orchestrator was down fires when one starts again.
CREATE TABLE workflow_timers (
    instance_id uuid NOT NULL,
    due_at timestamptz NOT NULL,
    tenant_id text NOT NULL,
    PRIMARY KEY (instance_id, due_at)
);
CREATE INDEX workflow_timers_by_due ON workflow_timers (due_at);
