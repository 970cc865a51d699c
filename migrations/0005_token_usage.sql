-- Token use and cost per tenant, agent, model and day (UTC); token_usage_runs remembers each run's agent and model.
CREATE TABLE token_usage (
    tenant_id text NOT NULL,
    agent_id uuid NOT NULL,
    model text NOT NULL,
    day date NOT NULL,
    runs integer NOT NULL DEFAULT 0,
    tokens_in bigint NOT NULL DEFAULT 0,
    tokens_out bigint NOT NULL DEFAULT 0,
    cost numeric(20, 8) NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, agent_id, model, day)
);

CREATE TABLE token_usage_runs (
    run_id uuid PRIMARY KEY,
    tenant_id text NOT NULL,
    agent_id uuid NOT NULL,
    model text NOT NULL
);
