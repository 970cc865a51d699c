"""Every aggregate of the model, and for each event class the context and aggregate it belongs to.

An aggregate module holds one aggregate and its events (STYLE #4), so an event's module names its
aggregate; the context is the package under `domain/`.
"""

from __future__ import annotations

from functools import cache

from domain.access.api_key import ApiKey
from domain.agents.agent import Agent
from domain.agents.agent_run import AgentRun
from domain.agents.budget import Budget
from domain.agents.budget_ledger import BudgetLedger
from domain.aggregate import Aggregate
from domain.events import DomainEvent
from domain.privacy.data_subject import DataSubject
from domain.validation.ruleset import RuleSet
from domain.validation.validation import Validation
from domain.workflows.instance import WorkflowInstance
from domain.workflows.template import WorkflowTemplate

AGGREGATES: tuple[type[Aggregate], ...] = (
    Agent,
    AgentRun,
    Budget,
    BudgetLedger,
    WorkflowTemplate,
    WorkflowInstance,
    RuleSet,
    Validation,
    ApiKey,
    DataSubject,
)

# The seed's exchange names: `<name>.events`; the routing key starts with the same word.
EXCHANGE_PREFIX = {
    "agents": "agent",
    "workflows": "workflow",
    "validation": "validation",
    "notifications": "notification",
    "files": "file",
    "access": "access",
    "privacy": "privacy",
}


def event_classes() -> list[type[DomainEvent]]:
    """Every concrete event class of the model."""
    found: list[type[DomainEvent]] = []
    pending: list[type[DomainEvent]] = [DomainEvent]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


@cache
def aggregate_of(event_type: type[DomainEvent]) -> type[Aggregate]:
    for aggregate in AGGREGATES:
        if aggregate.__module__ == event_type.__module__:
            return aggregate
    raise LookupError(f"{event_type.__qualname__} belongs to no aggregate of the catalog")


@cache
def context_of(event_type: type[DomainEvent]) -> str:
    """The bounded context of an event: `agents`, `workflows`, `validation`, ..."""
    return event_type.__module__.split(".")[1]


def exchange_of(context: str) -> str:
    return f"{EXCHANGE_PREFIX[context]}.events"


def routing_key_of(event_type: type[DomainEvent]) -> str:
    """`<context>.<Aggregate>.<Event>`, e.g. `agent.AgentRun.AgentRunSucceeded`."""
    context = EXCHANGE_PREFIX[context_of(event_type)]
    return f"{context}.{aggregate_of(event_type).__name__}.{event_type.__name__}"
