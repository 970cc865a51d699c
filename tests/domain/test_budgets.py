"""Budgets: limits per tenant, and a monthly ledger that reserves a run's worst case before the call."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.agents.agent_run import ChatMessage
from domain.agents.budget import Budget, BudgetLimits, budget_id_of
from domain.agents.budget_ledger import BudgetLedger, BudgetReserved, BudgetSettled, worst_case_tokens
from domain.agents.errors import BudgetExhausted, InvalidBudget
from tests.strategies import Clock, budget_limits

JAN_10 = date(2026, 1, 10)


def ledger(clock: Clock) -> BudgetLedger:
    made, _ = BudgetLedger.open(clock.ctx("agent-worker"), month="2026-01")
    return made


def test_a_tenant_has_one_budget_under_an_id_derived_from_the_tenant() -> None:
    budget, event = Budget.define(Clock(tenant_id="acme").ctx("admin"), limits=BudgetLimits(tokens_per_day=10))
    assert budget.id == event.originator_id == budget_id_of("acme") != budget_id_of("globex")


@pytest.mark.parametrize(
    "limits",
    [
        BudgetLimits(tokens_per_day=-1),
        BudgetLimits(cost_per_month=Decimal("-0.01")),
        BudgetLimits(cost_per_day=Decimal("NaN")),
        BudgetLimits(cost_per_day=Decimal("0.000000001")),
        BudgetLimits(cost_per_month=Decimal(10**13)),
    ],
)
def test_a_negative_endless_or_too_fine_limit_is_refused(limits: BudgetLimits) -> None:
    with pytest.raises(InvalidBudget):
        Budget.define(Clock().ctx("admin"), limits=limits)


def test_a_run_within_the_limits_is_reserved_and_later_settled_with_what_it_used() -> None:
    clock = Clock()
    book = ledger(clock)
    limits = BudgetLimits(tokens_per_day=1_000, cost_per_month=Decimal(1))
    (reserved,) = book.reserve(
        clock.ctx(), run_id=UUID(int=1), day=JAN_10, tokens=600, cost=Decimal("0.5"), limits=limits
    )
    assert isinstance(reserved, BudgetReserved)
    assert book.used_on(JAN_10).tokens == 600
    (settled,) = book.settle(clock.ctx(), run_id=UUID(int=1), tokens=150, cost=Decimal("0.1"))
    assert isinstance(settled, BudgetSettled)
    assert (settled.reserved_tokens, settled.tokens) == (600, 150)
    assert (book.used_on(JAN_10).tokens, book.used_in_month().cost) == (150, Decimal("0.1"))


def test_the_run_that_would_cross_the_daily_limit_is_refused_until_the_next_utc_midnight() -> None:
    clock = Clock()
    book = ledger(clock)
    limits = BudgetLimits(tokens_per_day=1_000)
    book.reserve(clock.ctx(), run_id=UUID(int=1), day=JAN_10, tokens=600, cost=Decimal(0), limits=limits)
    with pytest.raises(BudgetExhausted) as refused:
        book.reserve(clock.ctx(), run_id=UUID(int=2), day=JAN_10, tokens=600, cost=Decimal(0), limits=limits)
    assert refused.value.retry_at == datetime(2026, 1, 11, tzinfo=UTC)
    assert "daily token budget of 1000 would be exceeded: 600 used or reserved" in refused.value.reason
    # Another day of the month still has its whole daily budget.
    assert book.reserve(
        clock.ctx(), run_id=UUID(int=2), day=date(2026, 1, 11), tokens=600, cost=Decimal(0), limits=limits
    )


def test_an_exhausted_month_waits_for_the_first_of_the_next_month_even_if_the_day_also_is() -> None:
    clock = Clock()
    book = ledger(clock)
    limits = BudgetLimits(cost_per_day=Decimal(1), cost_per_month=Decimal(1))
    book.reserve(clock.ctx(), run_id=UUID(int=1), day=JAN_10, tokens=0, cost=Decimal("0.9"), limits=limits)
    with pytest.raises(BudgetExhausted) as refused:
        book.reserve(clock.ctx(), run_id=UUID(int=2), day=JAN_10, tokens=0, cost=Decimal("0.2"), limits=limits)
    assert refused.value.retry_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_a_run_larger_than_the_limit_itself_is_refused_with_no_time_to_wait_for() -> None:
    clock = Clock()
    with pytest.raises(BudgetExhausted) as refused:
        ledger(clock).reserve(
            clock.ctx(),
            run_id=UUID(int=1),
            day=JAN_10,
            tokens=5_000,
            cost=Decimal(0),
            limits=BudgetLimits(tokens_per_day=100),
        )
    assert refused.value.retry_at is None
    assert "lower the agent's max_tokens" in refused.value.reason


def test_reserving_again_for_the_same_run_and_settling_an_unknown_run_change_nothing() -> None:
    clock = Clock()
    book = ledger(clock)
    limits = BudgetLimits(tokens_per_day=1_000)
    book.reserve(clock.ctx(), run_id=UUID(int=1), day=JAN_10, tokens=600, cost=Decimal(0), limits=limits)
    assert book.reserve(clock.ctx(), run_id=UUID(int=1), day=JAN_10, tokens=600, cost=Decimal(0), limits=limits) == []
    assert book.settle(clock.ctx(), run_id=UUID(int=9), tokens=1, cost=Decimal(0)) == []
    assert book.version == 2


def test_the_worst_case_counts_every_message_and_every_token_the_run_may_answer() -> None:
    messages = [ChatMessage("system", "Be brief."), ChatMessage("user", "é" * 30)]
    assert worst_case_tokens(messages, 100) == (3 + 4) + (20 + 4) + 100  # 9 bytes, 60 bytes: 3 per token


@settings(max_examples=200)
@given(
    limits=budget_limits,
    runs=st.lists(
        st.tuples(st.integers(0, 1_500), st.integers(0, 20), st.integers(0, 100), st.integers(10, 12)), max_size=15
    ),
)
def test_what_is_used_or_reserved_never_passes_a_limit_when_runs_use_at_most_their_reservation(
    limits: BudgetLimits, runs: list[tuple[int, int, int, int]]
) -> None:
    clock = Clock()
    book = ledger(clock)
    for number, (tokens, cents, used_percent, day) in enumerate(runs, start=1):
        run_id, on = UUID(int=number), date(2026, 1, day)
        try:
            book.reserve(clock.ctx(), run_id=run_id, day=on, tokens=tokens, cost=Decimal(cents) / 100, limits=limits)
        except BudgetExhausted:
            continue
        if used_percent % 2:  # some runs are still in flight, the others have finished
            used_tokens, used_cost = tokens * used_percent // 100, Decimal(cents) * used_percent / 10_000
            book.settle(clock.ctx(), run_id=run_id, tokens=used_tokens, cost=used_cost)
        for check_day in (10, 11, 12):
            today = book.used_on(date(2026, 1, check_day))
            assert limits.tokens_per_day is None or today.tokens <= limits.tokens_per_day
            assert limits.cost_per_day is None or today.cost <= limits.cost_per_day
        month = book.used_in_month()
        assert limits.tokens_per_month is None or month.tokens <= limits.tokens_per_month
        assert limits.cost_per_month is None or month.cost <= limits.cost_per_month
