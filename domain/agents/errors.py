"""Refusals of the agents context."""

from domain.aggregate import DomainError


class AgentError(DomainError):
    """A command the agents context refuses."""


class InvalidAgentConfiguration(AgentError):
    """An agent's settings are out of range or missing."""


class AgentIsArchived(AgentError):
    """The agent was archived and takes no more changes or runs."""


class InvalidRunTransition(AgentError):
    """The run is not in a state that allows this step."""
