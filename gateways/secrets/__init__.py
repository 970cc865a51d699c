"""Secrets: from the environment by default, from HashiCorp Vault (KV v2) when configured."""
