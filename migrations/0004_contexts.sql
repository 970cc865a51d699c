-- The conversation of each agent run: the messages sent and the reply received, in order.
CREATE TABLE contexts (
    run_id uuid NOT NULL,
    seq integer NOT NULL,
    tenant_id text NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, seq)
);
