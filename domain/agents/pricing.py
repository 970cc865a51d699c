"""What a call costs: a price table per provider and model, in currency units per million tokens."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import msgspec

MILLION = Decimal(1_000_000)
CENT_FRACTION = Decimal("0.00000001")  # costs are kept to 1e-8 of the currency unit


class Price(msgspec.Struct, frozen=True, kw_only=True):
    input_per_million: Decimal
    output_per_million: Decimal


class PriceTable(msgspec.Struct, frozen=True, kw_only=True):
    """Prices by `provider/model`; `provider/*` prices every model of a provider not named on its own."""

    currency: str = "USD"
    prices: dict[str, Price] = msgspec.field(default_factory=dict)

    def price_of(self, provider: str, model: str) -> Price | None:
        return self.prices.get(f"{provider}/{model}") or self.prices.get(f"{provider}/*")

    def cost(self, provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
        """The cost of one call; an unpriced model costs 0 (and the run says which model it was)."""
        if tokens_in < 0 or tokens_out < 0:
            raise ValueError("token counts cannot be negative")
        price = self.price_of(provider, model)
        if price is None:
            return Decimal(0)
        total = (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / MILLION
        return total.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP)
