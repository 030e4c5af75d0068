from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from prompts.models import ModelMetadata, ModelPrice
from prompts.pricing import cost_for
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


def test_default_prices_ship_with_the_migration():
    cost = cost_for(provider="openai", model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=0)

    assert cost == pytest.approx(0.15)


def test_the_longest_matching_model_prefix_wins():
    mini = cost_for(
        provider="openai", model="gpt-4o-mini-2024-07-18", input_tokens=0, output_tokens=1_000_000
    )
    full = cost_for(
        provider="openai", model="gpt-4o-2024-08-06", input_tokens=0, output_tokens=1_000_000
    )

    assert (mini, full) == (pytest.approx(0.60), pytest.approx(10.0))


def test_the_newest_price_in_effect_applies():
    ModelPrice.objects.create(
        provider="openai",
        model="gpt-4o",
        effective_from=datetime.date(2030, 1, 1),
        input_per_million=Decimal("1"),
        output_per_million=Decimal("1"),
    )

    today = cost_for(provider="openai", model="gpt-4o", input_tokens=1_000_000, output_tokens=0)
    later = cost_for(
        provider="openai",
        model="gpt-4o",
        input_tokens=1_000_000,
        output_tokens=0,
        on=datetime.date(2030, 6, 1),
    )

    assert (today, later) == (pytest.approx(2.5), pytest.approx(1.0))


def test_an_unknown_model_has_no_cost():
    assert cost_for(provider="acme", model="x", input_tokens=10, output_tokens=10) is None


def test_the_database_requires_total_tokens_to_be_input_plus_output():
    prompt = PromptFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelMetadata.objects.create(
            prompt=prompt,
            generation_model="m",
            generation_provider="p",
            processing_time=1,
            input_tokens=1,
            output_tokens=2,
            total_tokens=4,
            created_at=timezone.now(),
        )
