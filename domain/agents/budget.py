"""`Budget`: a tenant's limits on LLM spending, per UTC day and per UTC month, in tokens and in cost.

One budget per tenant, under an id derived from the tenant, so that the agent worker finds it without a
lookup. A limit left unset does not limit. A tenant without a budget is not metered at all; once it has
one, every run is reserved against its ledger (`budget_ledger.py`), even while no limit is set.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Self
from uuid import UUID

import msgspec

from domain.agents.errors import InvalidBudget
from domain.agents.pricing import CENT_FRACTION
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent

BUDGET_NAMESPACE = UUID("8f3a6c1e-2b7d-4e59-a0c4-5d1e9b7f3a20")
MAX_TOKENS_LIMIT = 10**15
MAX_COST_LIMIT = Decimal(10**12)


class BudgetLimits(msgspec.Struct, frozen=True, kw_only=True):
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    cost_per_day: Decimal | None = None
    cost_per_month: Decimal | None = None

    @property
    def any_set(self) -> bool:
        return any(limit is not None for limit in msgspec.structs.astuple(self))


class BudgetSet(DomainEvent, frozen=True, kw_only=True):
    limits: BudgetLimits


def budget_id_of(tenant_id: str) -> UUID:
    """The id of a tenant's budget: the same for every process, derived from the tenant."""
    return uuid.uuid5(BUDGET_NAMESPACE, tenant_id)


def check_limits(limits: BudgetLimits) -> None:
    for name in ("tokens_per_day", "tokens_per_month"):
        tokens = getattr(limits, name)
        if tokens is not None and not 0 <= tokens <= MAX_TOKENS_LIMIT:
            raise InvalidBudget(f"{name} {tokens} is outside 0..{MAX_TOKENS_LIMIT}")
    for name in ("cost_per_day", "cost_per_month"):
        cost = getattr(limits, name)
        if cost is None:
            continue
        if not cost.is_finite() or not 0 <= cost <= MAX_COST_LIMIT:
            raise InvalidBudget(f"{name} {cost} is outside 0..{MAX_COST_LIMIT}")
        if cost != cost.quantize(CENT_FRACTION):
            raise InvalidBudget(f"{name} {cost} has more than 8 decimal places")


class Budget(Aggregate, kw_only=True):
    creation_event = BudgetSet

    limits: BudgetLimits

    @classmethod
    def define(cls, ctx: CommandContext, *, limits: BudgetLimits) -> tuple[Self, BudgetSet]:
        check_limits(limits)
        return cls._create(ctx, budget_id_of(ctx.tenant_id), BudgetSet, limits=limits)

    def revise(self, ctx: CommandContext, *, limits: BudgetLimits) -> list[DomainEvent]:
        check_limits(limits)
        return [self._trigger(ctx, BudgetSet, limits=limits)]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, BudgetSet)
        return cls(**cls._identity(event), limits=event.limits)

    def apply(self, event: Any) -> None:
        match event:
            case BudgetSet():
                self.limits = event.limits
            case _:
                super().apply(event)
