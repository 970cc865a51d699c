-- How each rule set scores: its threshold, its weights in total, its current version.
CREATE TABLE scoring_models (
    ruleset_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    ruleset_version integer NOT NULL,
    threshold double precision NOT NULL,
    rule_count integer NOT NULL,
    total_weight double precision NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX scoring_models_by_tenant_name ON scoring_models (tenant_id, name);
