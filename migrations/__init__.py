"""Numbered SQL migrations for the read models and the audit trail, applied in order by `aiwp migrate`."""
