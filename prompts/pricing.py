"""Token prices: a versioned table per provider/model, edited in the admin."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils import timezone

from prompts.models import ModelPrice

MILLION = Decimal(1_000_000)


def price_for(*, provider: str, model: str, on: datetime.date | None = None) -> ModelPrice | None:
    """The newest price in effect on `on` whose model is `model` or its longest prefix."""
    day = on or timezone.now().date()
    rows = ModelPrice.objects.filter(
        provider__iexact=provider.strip(), effective_from__lte=day
    ).order_by("-effective_from")
    name = model.strip().lower()
    best: ModelPrice | None = None
    for row in rows:
        candidate = row.model.lower()
        if name != candidate and not name.startswith(candidate):
            continue
        # Longest (most specific) name wins; among equals, the newest (first seen).
        if best is None or len(candidate) > len(best.model):
            best = row
    return best


def cost_for(
    *,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    on: datetime.date | None = None,
) -> float | None:
    """USD cost of a call, or None when no price is known for that provider/model."""
    price = price_for(provider=provider, model=model, on=on)
    if price is None:
        return None
    cost = (
        Decimal(input_tokens) * price.input_per_million
        + Decimal(output_tokens) * price.output_per_million
    ) / MILLION
    return float(round(cost, 8))
