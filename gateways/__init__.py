"""Clients of third-party services (LLM providers, channels, storage, secrets, identity) behind the ports."""
