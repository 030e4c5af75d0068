"""Ship a few published list prices so costs work on a fresh install (editable in the admin)."""

import datetime
from decimal import Decimal

from django.db import migrations

EFFECTIVE = datetime.date(2024, 10, 1)
# provider, model (name or prefix), USD per million input tokens, per million output tokens
DEFAULT_PRICES = [
    ("openai", "gpt-4o-mini", "0.15", "0.60"),
    ("openai", "gpt-4o", "2.50", "10.00"),
    ("openai", "gpt-4.1", "2.00", "8.00"),
    ("openai", "gpt-4.1-mini", "0.40", "1.60"),
    ("openai", "o3-mini", "1.10", "4.40"),
    ("anthropic", "claude-3-5-sonnet", "3.00", "15.00"),
    ("anthropic", "claude-3-5-haiku", "0.80", "4.00"),
    ("anthropic", "claude-3-opus", "15.00", "75.00"),
    ("anthropic", "claude-sonnet-4", "3.00", "15.00"),
    ("anthropic", "claude-opus-4", "15.00", "75.00"),
    ("google", "gemini-1.5-flash", "0.075", "0.30"),
    ("google", "gemini-1.5-pro", "1.25", "5.00"),
]


def add_prices(apps, schema_editor):
    ModelPrice = apps.get_model("prompts", "ModelPrice")
    for provider, model, price_in, price_out in DEFAULT_PRICES:
        ModelPrice.objects.get_or_create(
            provider=provider,
            model=model,
            effective_from=EFFECTIVE,
            defaults={
                "input_per_million": Decimal(price_in),
                "output_per_million": Decimal(price_out),
                "notes": "default list price shipped with Alchemy",
            },
        )


def remove_prices(apps, schema_editor):
    ModelPrice = apps.get_model("prompts", "ModelPrice")
    for provider, model, _, _ in DEFAULT_PRICES:
        ModelPrice.objects.filter(provider=provider, model=model, effective_from=EFFECTIVE).delete()


class Migration(migrations.Migration):
    dependencies = [("prompts", "0001_initial")]
    operations = [migrations.RunPython(add_prices, remove_prices)]
