-- The rules of each rule set's current version.
CREATE TABLE validation_rules (
    ruleset_id uuid NOT NULL,
    rule_id text NOT NULL,
    tenant_id text NOT NULL,
    ruleset_version integer NOT NULL,
    kind text NOT NULL,
    weight double precision NOT NULL,
    params jsonb NOT NULL,
    PRIMARY KEY (ruleset_id, rule_id)
);
