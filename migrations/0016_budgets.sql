-- Each tenant's budget limits (NULL: no limit), and per UTC day what its runs spent and still hold reserved.
CREATE TABLE budgets (
    tenant_id text PRIMARY KEY,
    budget_id uuid NOT NULL,
    tokens_per_day bigint,
    tokens_per_month bigint,
    cost_per_day numeric(20, 8),
    cost_per_month numeric(20, 8),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version integer NOT NULL,
    position bigint NOT NULL
);

CREATE TABLE budget_usage (
    tenant_id text NOT NULL,
    day date NOT NULL,
    runs integer NOT NULL DEFAULT 0,
    spent_tokens bigint NOT NULL DEFAULT 0,
    spent_cost numeric(20, 8) NOT NULL DEFAULT 0,
    reserved_tokens bigint NOT NULL DEFAULT 0,
    reserved_cost numeric(20, 8) NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
