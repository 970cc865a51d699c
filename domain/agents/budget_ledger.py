"""`BudgetLedger`: what a tenant spent and has reserved in one UTC month, day by day.

Before a metered run calls a provider, its worst case (prompt estimate + max_tokens, and that at the
price of the dearest provider of its chain) is reserved here; when it ends, the reservation is settled
with what it really used. One ledger per tenant and month holds both the month's total and each day's,
so one optimistic save checks every limit at once: two workers cannot both take the last of a budget.
A run is counted in the day and month it was requested.

A validation's `llm_judge` call is charged the same way (`charge="judge"`), under an id derived from the
validation and the rule (`judge_charge_id`), in the day the validation was requested (ADR 0004).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar, Literal, NamedTuple, Self
from uuid import UUID

import msgspec

from domain.agents.agent_run import ChatMessage
from domain.agents.budget import BudgetLimits
from domain.agents.errors import BudgetExhausted, InvalidRunTransition
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent

LEDGER_NAMESPACE = UUID("c71d2e90-4a3b-4f86-9e15-7b2a0d6c8f41")
JUDGE_CHARGE_NAMESPACE = UUID("5b0e3f6a-91c4-4d27-8a6e-2f4c7d9b1e53")
# Tokenizers make about one token of 4 bytes of English; one of 3 leaves room for code and other scripts.
BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4  # the role and the separators each message costs


# What a reservation pays for: an agent run, or one judge call of a validation's `llm_judge` rule.
Charge = Literal["run", "judge"]


class Usage(msgspec.Struct, kw_only=True):
    tokens: int = 0
    cost: Decimal = Decimal(0)


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    tokens: int
    cost: Decimal
    charge: Charge = "run"


class BudgetLedgerOpened(DomainEvent, frozen=True, kw_only=True):
    month: str  # "2026-01"


class BudgetReserved(DomainEvent, frozen=True, kw_only=True):
    """A worst case held on the ledger. `run_id` is the charge's id: the run's, or for a judge call its
    `judge_charge_id` (version 1 events, from before judge calls were charged, are all runs)."""

    class_version: ClassVar[int] = 2

    run_id: UUID
    day: date
    tokens: int
    cost: Decimal
    charge: Charge = "run"

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["charge"] = "run"


class BudgetSettled(DomainEvent, frozen=True, kw_only=True):
    """A reservation replaced by what the run (or judge call) really used; the reserved amounts are kept for the
    read model. `run_id` and `charge` as in `BudgetReserved`."""

    class_version: ClassVar[int] = 2

    run_id: UUID
    day: date
    reserved_tokens: int
    reserved_cost: Decimal
    tokens: int
    cost: Decimal
    charge: Charge = "run"

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["charge"] = "run"


def worst_case_tokens(messages: list[ChatMessage], max_tokens: int) -> int:
    """What a run may use at most: its prompt (an estimate that errs high) and every token it may answer."""
    prompt = sum(-(-len(m.content.encode()) // BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)
    return prompt + max_tokens


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def day_of(at: datetime) -> date:
    return at.astimezone(UTC).date()


def ledger_id_of(tenant_id: str, month: str) -> UUID:
    return uuid.uuid5(LEDGER_NAMESPACE, f"{tenant_id}\x1f{month}")


def judge_charge_id(validation_id: UUID, rule_id: str) -> UUID:
    """The ledger's key for a validation's judge call of one rule: the same for every delivery of it."""
    return uuid.uuid5(JUDGE_CHARGE_NAMESPACE, f"{validation_id}\x1f{rule_id}")


def next_day(day: date) -> datetime:
    return datetime.combine(date.fromordinal(day.toordinal() + 1), time(), UTC)


def next_month(day: date) -> datetime:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class Check(NamedTuple):
    """One limit against what is used and what a run may need."""

    name: str
    limit: int | Decimal | None
    used: int | Decimal
    need: int | Decimal
    resets_at: datetime

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and Decimal(self.used) + Decimal(self.need) > Decimal(self.limit)

    @property
    def never_fits(self) -> bool:
        """Waiting for the period to reset does not help: the run alone is over the limit."""
        return self.limit is not None and Decimal(self.need) > Decimal(self.limit)


class BudgetLedger(Aggregate, kw_only=True):
    creation_event = BudgetLedgerOpened

    month: str
    spent: dict[date, Usage] = msgspec.field(default_factory=dict)
    reservations: dict[UUID, Reservation] = msgspec.field(default_factory=dict)

    @classmethod
    def open(cls, ctx: CommandContext, *, month: str) -> tuple[Self, BudgetLedgerOpened]:
        return cls._create(ctx, ledger_id_of(ctx.tenant_id, month), BudgetLedgerOpened, month=month)

    def used_on(self, day: date) -> Usage:
        """Spent and reserved on one day."""
        spent = self.spent.get(day, Usage())
        held = [r for r in self.reservations.values() if r.day == day]
        return Usage(tokens=spent.tokens + sum(r.tokens for r in held), cost=spent.cost + sum(r.cost for r in held))

    def used_in_month(self) -> Usage:
        """Spent and reserved in the whole month."""
        held = self.reservations.values()
        return Usage(
            tokens=sum(u.tokens for u in self.spent.values()) + sum(r.tokens for r in held),
            cost=sum((u.cost for u in self.spent.values()), Decimal(0)) + sum((r.cost for r in held), Decimal(0)),
        )

    def reserve(
        self,
        ctx: CommandContext,
        *,
        run_id: UUID,
        day: date,
        tokens: int,
        cost: Decimal,
        limits: BudgetLimits,
        charge: Charge = "run",
    ) -> list[DomainEvent]:
        """Holds a run's (or judge call's) worst case, or raises `BudgetExhausted`; one already held is kept."""
        if run_id in self.reservations:
            return []
        if month_of(day) != self.month:
            raise InvalidRunTransition(f"day {day} is not in the ledger's month {self.month}")
        if tokens < 0 or cost < 0:
            raise InvalidRunTransition("a reservation cannot be negative")
        today, month = self.used_on(day), self.used_in_month()
        checks = [
            Check("daily token", limits.tokens_per_day, today.tokens, tokens, next_day(day)),
            Check("daily cost", limits.cost_per_day, today.cost, cost, next_day(day)),
            Check("monthly token", limits.tokens_per_month, month.tokens, tokens, next_month(day)),
            Check("monthly cost", limits.cost_per_month, month.cost, cost, next_month(day)),
        ]
        what = "this run" if charge == "run" else "this judge call"
        over = [check for check in checks if check.exceeded]
        never = [check for check in over if check.never_fits]
        if never:
            first = never[0]
            raise BudgetExhausted(
                f"the {first.name} budget is {first.limit} and {what} may use up to {first.need} on its own;"
                " raise the budget or lower the agent's max_tokens",
                None,
            )
        if over:
            first, retry_at = over[0], max(check.resets_at for check in over)
            raise BudgetExhausted(
                f"the {first.name} budget of {first.limit} would be exceeded: {first.used} used or reserved,"
                f" {what} may use up to {first.need}; it resets at {retry_at.isoformat()}",
                retry_at,
            )
        return [self._trigger(ctx, BudgetReserved, run_id=run_id, day=day, tokens=tokens, cost=cost, charge=charge)]

    def settle(self, ctx: CommandContext, *, run_id: UUID, tokens: int, cost: Decimal) -> list[DomainEvent]:
        """Replaces a reservation by what its run (or judge call) used; nothing to do for one that holds none."""
        held = self.reservations.get(run_id)
        if held is None:
            return []
        if tokens < 0 or cost < 0:
            raise InvalidRunTransition("usage cannot be negative")
        return [
            self._trigger(
                ctx,
                BudgetSettled,
                run_id=run_id,
                day=held.day,
                reserved_tokens=held.tokens,
                reserved_cost=held.cost,
                tokens=tokens,
                cost=cost,
                charge=held.charge,
            )
        ]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, BudgetLedgerOpened)
        return cls(**cls._identity(event), month=event.month)

    def apply(self, event: Any) -> None:
        match event:
            case BudgetReserved():
                held = Reservation(day=event.day, tokens=event.tokens, cost=event.cost, charge=event.charge)
                self.reservations = {**self.reservations, event.run_id: held}
            case BudgetSettled():
                self.reservations = {k: v for k, v in self.reservations.items() if k != event.run_id}
                before = self.spent.get(event.day, Usage())
                usage = Usage(tokens=before.tokens + event.tokens, cost=before.cost + event.cost)
                self.spent = {**self.spent, event.day: usage}
            case _:
                super().apply(event)
