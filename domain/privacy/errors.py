"""Refusals of the privacy context."""

from domain.aggregate import DomainError


class PrivacyError(DomainError):
    """A command the privacy context refuses."""
