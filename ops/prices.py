"""The default price table (USD per million tokens); `AIWP_PRICES` (JSON of the same shape) replaces it.

Prices change: check the providers' pages and set `AIWP_PRICES` for production. The scripted provider has a
nominal price so that the demo shows costs.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from domain.agents.pricing import Price, PriceTable


def _price(input_per_million: str, output_per_million: str) -> Price:
    return Price(input_per_million=Decimal(input_per_million), output_per_million=Decimal(output_per_million))


DEFAULT_PRICES = PriceTable(
    currency="USD",
    prices={
        "scripted/*": _price("0.15", "0.60"),
        "openai/gpt-4o-mini": _price("0.15", "0.60"),
        "openai/gpt-4o": _price("2.50", "10.00"),
        "anthropic/claude-3-5-haiku-latest": _price("0.80", "4.00"),
        "anthropic/claude-3-5-sonnet-latest": _price("3.00", "15.00"),
    },
)


def price_table(json_text: str | None) -> PriceTable:
    """The table from `AIWP_PRICES`, or the default one."""
    if not json_text:
        return DEFAULT_PRICES
    return msgspec.json.decode(json_text, type=PriceTable)
