"""Costs from the price table: exact decimals, additive, zero for what is not priced."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.agents.pricing import Price, PriceTable

TABLE = PriceTable(
    prices={
        "openai/gpt-4o-mini": Price(input_per_million=Decimal("0.15"), output_per_million=Decimal("0.60")),
        "anthropic/*": Price(input_per_million=Decimal("3"), output_per_million=Decimal("15")),
    }
)
tokens = st.integers(0, 10_000_000)


def test_a_call_costs_its_tokens_at_the_models_price() -> None:
    assert TABLE.cost("openai", "gpt-4o-mini", 1_000_000, 500_000) == Decimal("0.45000000")
    assert TABLE.cost("anthropic", "claude-any", 1_000, 1_000) == Decimal("0.01800000")


def test_an_unpriced_model_costs_nothing() -> None:
    assert TABLE.cost("openai", "unknown", 10, 10) == Decimal(0)


@given(tokens, tokens, tokens, tokens)
def test_cost_is_additive_up_to_rounding(a_in: int, a_out: int, b_in: int, b_out: int) -> None:
    together = TABLE.cost("openai", "gpt-4o-mini", a_in + b_in, a_out + b_out)
    apart = TABLE.cost("openai", "gpt-4o-mini", a_in, a_out) + TABLE.cost("openai", "gpt-4o-mini", b_in, b_out)
    assert abs(together - apart) <= Decimal("0.00000001")
    assert together >= 0


def test_negative_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        TABLE.cost("openai", "gpt-4o-mini", -1, 0)
