-- Where the relay and each projector stand in the event log.
CREATE TABLE relay_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    -- the last position published on each context exchange, for the envelopes' previous positions
    previous jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projection_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stalled')),
    error text NOT NULL DEFAULT '',
    chain_head bytea,
    updated_at timestamptz NOT NULL DEFAULT now()
);
