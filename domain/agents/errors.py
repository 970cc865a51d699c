"""Refusals of the agents context."""

from datetime import datetime

from domain.aggregate import DomainError


class AgentError(DomainError):
    """A command the agents context refuses."""


class InvalidAgentConfiguration(AgentError):
    """An agent's settings are out of range or missing."""


class AgentIsArchived(AgentError):
    """The agent was archived and takes no more changes or runs."""


class InvalidRunTransition(AgentError):
    """The run is not in a state that allows this step."""


class InvalidBudget(AgentError):
    """A budget limit is negative, not a number, or finer than the cost precision."""


class BudgetExhausted(AgentError):
    """A run would spend past a budget limit; `retry_at` is when the exhausted period resets (None: never fits)."""

    def __init__(self, reason: str, retry_at: datetime | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at
