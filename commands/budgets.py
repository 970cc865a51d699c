"""Commands and handlers of tenants' budgets: setting the limits, reserving a call's worst case, settling it.

The agent worker reserves for each run and the validation worker for each judge call, both through
`worst_case_of` and `reserve_budget`, so the two are charged alike (ADR 0004).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID

import msgspec

from commands.errors import AggregateNotFound, ConcurrencyError
from commands.llm import LlmRequest
from commands.ports import EventStore
from commands.results import CommandResult
from commands.unit_of_work import change, load
from domain.agents.budget import Budget, BudgetLimits, budget_id_of
from domain.agents.budget_ledger import BudgetLedger, Charge, ledger_id_of, month_of, worst_case_tokens
from domain.agents.pricing import PriceTable
from domain.aggregate import CommandContext
from domain.events import DomainEvent

# Reservations of one tenant race on one ledger; a loser reloads and decides again, this many times at most.
LEDGER_CONFLICT_RETRIES = 100


class SetBudget(msgspec.Struct, frozen=True, kw_only=True):
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    cost_per_day: Decimal | None = None
    cost_per_month: Decimal | None = None
    expected_version: int | None = None


class ReserveBudget(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID  # the charge's id: the run's, or a judge call's `judge_charge_id`
    day: date  # the UTC day the run (or the validation) was requested
    tokens: int
    cost: Decimal
    limits: BudgetLimits
    charge: Charge = "run"


class SettleBudget(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    day: date
    tokens: int
    cost: Decimal


async def set_budget(store: EventStore, ctx: CommandContext, cmd: SetBudget) -> CommandResult:
    """Sets the limits of the caller's tenant (each may be unset); the first call creates its budget."""
    limits = BudgetLimits(
        tokens_per_day=cmd.tokens_per_day,
        tokens_per_month=cmd.tokens_per_month,
        cost_per_day=cmd.cost_per_day,
        cost_per_month=cmd.cost_per_month,
    )
    try:
        await load(store, Budget, budget_id_of(ctx.tenant_id), ctx)
    except AggregateNotFound:
        if cmd.expected_version not in (None, 0):
            raise ConcurrencyError(f"the budget of {ctx.tenant_id} does not exist yet") from None
        budget, event = Budget.define(ctx, limits=limits)
        position = await store.save(budget, [event])  # two first sets at once: the loser gets a 409
        return CommandResult(id=budget.id, version=budget.version, position=position, created=True)
    return await change(
        store,
        Budget,
        budget_id_of(ctx.tenant_id),
        ctx,
        lambda budget: budget.revise(ctx, limits=limits),
        expected_version=cmd.expected_version,
    )


class WorstCase(NamedTuple):
    tokens: int
    cost: Decimal


def worst_case_of(chain: Sequence[LlmRequest], prices: PriceTable) -> WorstCase:
    """What one call through a fallback chain may use at most: its prompt estimated high plus `max_tokens`,
    priced at the dearest model of the chain (the requests of a chain share their messages and max_tokens)."""
    first = chain[0]
    tokens = worst_case_tokens(first.messages, first.max_tokens)
    prompt = tokens - first.max_tokens
    return WorstCase(tokens, max(prices.cost(r.provider, r.model, prompt, r.max_tokens) for r in chain))


async def reserve_budget(store: EventStore, ctx: CommandContext, cmd: ReserveBudget) -> None:
    """Holds a run's (or judge call's) worst case on its tenant's ledger; raises `BudgetExhausted` when a limit
    would be passed."""
    for _ in range(LEDGER_CONFLICT_RETRIES):
        ledger, opened = await _ledger(store, ctx, month_of(cmd.day))
        reserved = ledger.reserve(
            ctx, run_id=cmd.run_id, day=cmd.day, tokens=cmd.tokens, cost=cmd.cost, limits=cmd.limits, charge=cmd.charge
        )
        events = [*opened, *reserved]
        if not events:
            return
        try:
            await store.save(ledger, events)
            return
        except ConcurrencyError:
            continue  # another run reserved first: decide again on what is left
    raise ConcurrencyError(f"the budget ledger of {ctx.tenant_id} for {month_of(cmd.day)} stayed contended")


async def settle_budget(store: EventStore, ctx: CommandContext, cmd: SettleBudget) -> None:
    """Replaces a run's (or judge call's) reservation by what it used; one that holds none changes nothing."""
    ledger_id = ledger_id_of(ctx.tenant_id, month_of(cmd.day))
    for _ in range(LEDGER_CONFLICT_RETRIES):
        try:
            ledger = await load(store, BudgetLedger, ledger_id, ctx)
        except AggregateNotFound:
            return
        events = ledger.settle(ctx, run_id=cmd.run_id, tokens=cmd.tokens, cost=cmd.cost)
        if not events:
            return
        try:
            await store.save(ledger, events)
            return
        except ConcurrencyError:
            continue
    raise ConcurrencyError(f"the budget ledger of {ctx.tenant_id} for {month_of(cmd.day)} stayed contended")


async def _ledger(store: EventStore, ctx: CommandContext, month: str) -> tuple[BudgetLedger, list[DomainEvent]]:
    """The tenant's ledger of the month, opened (with its first event to save) if this is its first run."""
    try:
        return await load(store, BudgetLedger, ledger_id_of(ctx.tenant_id, month), ctx), []
    except AggregateNotFound:
        ledger, opened = BudgetLedger.open(ctx, month=month)
        return ledger, [opened]


@dataclass
class TenantBudgets:
    """The tenants' budgets as a worker sees them: each read at most once per `ttl`, so that a tenant without
    a budget costs one read every few seconds, not one per run. A changed limit applies within `ttl`."""

    store: EventStore
    ttl: timedelta = timedelta(seconds=5)
    _seen: dict[str, tuple[datetime, BudgetLimits | None]] = field(default_factory=dict)

    async def limits_of(self, tenant_id: str, now: datetime) -> BudgetLimits | None:
        """The tenant's limits; None when it has no budget (it is not metered)."""
        seen = self._seen.get(tenant_id)
        if seen is not None and timedelta(0) <= now - seen[0] < self.ttl:
            return seen[1]
        try:
            limits: BudgetLimits | None = (await self.store.get(Budget, budget_id_of(tenant_id))).limits
        except AggregateNotFound:
            limits = None
        self._seen[tenant_id] = (now, limits)
        return limits
