from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from prompts import lifecycle
from prompts.learning import record_feedback
from prompts.models import Prompt
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)


def days(n: float) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def test_a_new_unrated_prompt_starts_at_the_prior_quality():
    prompt = PromptFactory(now=T0)

    assert prompt.relevance_score == pytest.approx(0.6)


def test_relevance_halves_after_one_half_life_without_use():
    prompt = PromptFactory(now=T0)

    list(lifecycle.decay(now=T0 + days(30)))

    prompt.refresh_from_db()
    assert prompt.relevance_score == pytest.approx(0.3)


def test_decay_arithmetic_with_a_fixed_clock_after_ninety_days():
    prompt = PromptFactory(now=T0)

    list(lifecycle.decay(now=T0 + days(90)))

    prompt.refresh_from_db()
    assert prompt.relevance_score == pytest.approx(0.6 * 0.125)


def test_decay_is_idempotent_for_the_same_clock():
    prompt = PromptFactory(now=T0)

    list(lifecycle.decay(now=T0 + days(45)))
    list(lifecycle.decay(now=T0 + days(45)))

    prompt.refresh_from_db()
    assert prompt.relevance_score == pytest.approx(0.6 * 0.5**1.5)


def test_use_restores_freshness_and_counts():
    prompt = PromptFactory(now=T0)
    list(lifecycle.decay(now=T0 + days(60)))

    prompt = lifecycle.record_use(prompt=prompt, now=T0 + days(60))

    assert prompt.usage_count == 1
    assert prompt.last_used_at == T0 + days(60)
    assert prompt.relevance_score == pytest.approx(0.6)


def test_good_feedback_raises_relevance():
    prompt = PromptFactory(now=T0)

    record_feedback(prompt=prompt, rating=5, now=T0)
    record_feedback(prompt=prompt, rating=5, now=T0)

    prompt.refresh_from_db()
    # (2 × 0.6 + 1 + 1) / (2 + 2) = 0.8
    assert prompt.relevance_score == pytest.approx(0.8)
    assert prompt.effectiveness_score == pytest.approx(0.8)
    assert prompt.mean_rating == 5


def test_decay_command_reports_and_updates(settings):
    prompt = PromptFactory(now=T0)
    out = StringIO()

    call_command("prompts", "decay", "--now", (T0 + days(30)).isoformat(), stdout=out)

    prompt.refresh_from_db()
    assert prompt.relevance_score == pytest.approx(0.3)
    assert "1 prompt" in out.getvalue()


def test_cleanup_dry_run_lists_but_changes_nothing():
    PromptFactory(now=T0)
    out = StringIO()

    call_command(
        "prompts",
        "cleanup",
        "--below",
        "0.1",
        "--unused-days",
        "90",
        "--dry-run",
        "--now",
        (T0 + days(100)).isoformat(),
        stdout=out,
    )

    assert "Would archive 1" in out.getvalue()
    assert Prompt.objects.active().count() == 1


def test_cleanup_archives_stale_prompts_but_spares_ones_with_children_or_feedback():
    stale = PromptFactory(now=T0)
    parent = PromptFactory(now=T0)
    PromptFactory(now=T0 + days(99), parent=parent)
    rated = PromptFactory(now=T0)
    record_feedback(prompt=rated, rating=1, now=T0)
    list(lifecycle.decay(now=T0 + days(100)))

    call_command(
        "prompts",
        "cleanup",
        "--below",
        "0.1",
        "--unused-days",
        "90",
        "--now",
        (T0 + days(100)).isoformat(),
        stdout=StringIO(),
    )

    archived = set(Prompt.objects.filter(archived_at__isnull=False).values_list("id", flat=True))
    assert archived == {stale.pk}


def test_cleanup_force_deletes_protected_prompts_too():
    parent = PromptFactory(now=T0)
    child = PromptFactory(now=T0, parent=parent)
    list(lifecycle.decay(now=T0 + days(100)))

    call_command(
        "prompts",
        "cleanup",
        "--below",
        "0.1",
        "--unused-days",
        "90",
        "--delete",
        "--force",
        "--now",
        (T0 + days(100)).isoformat(),
        stdout=StringIO(),
    )

    assert not Prompt.objects.filter(pk__in=[parent.pk, child.pk]).exists()
