"""The access context: who may do what — roles, permissions, and API keys for programmatic clients."""
