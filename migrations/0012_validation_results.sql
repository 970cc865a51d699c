CREATE TABLE validation_results (
    validation_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    ruleset_id uuid NOT NULL,
    ruleset_version integer NOT NULL,
    subject_type text NOT NULL,
    subject_id text NOT NULL,
    correlation_id uuid NOT NULL,
    status text NOT NULL,
    score double precision,
    passed boolean,
    feedback text NOT NULL DEFAULT '',
    results jsonb NOT NULL DEFAULT '[]',
    requested_at timestamptz NOT NULL,
    completed_at timestamptz,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX validation_results_by_tenant ON validation_results (tenant_id, requested_at, validation_id);
CREATE INDEX validation_results_by_subject ON validation_results (tenant_id, subject_type, subject_id);
CREATE INDEX validation_results_failing ON validation_results (tenant_id, requested_at) WHERE passed = false;
CREATE INDEX validation_results_by_correlation ON validation_results (tenant_id, correlation_id);
