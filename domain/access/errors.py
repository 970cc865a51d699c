"""Refusals of the access context."""

from domain.aggregate import DomainError


class AccessError(DomainError):
    """A command the access context refuses."""
