from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from prompts.learning import record_feedback
from prompts.models import LearningPattern, UserFeedback
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("rating", [0, 6])
def test_the_api_rejects_ratings_outside_one_to_five(api_client, rating):
    prompt = PromptFactory()

    response = api_client.post(
        reverse("api:add_feedback", args=[prompt.pk]),
        {"rating": rating},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert UserFeedback.objects.count() == 0


@pytest.mark.parametrize("rating", [0, 6])
def test_the_database_rejects_ratings_outside_one_to_five(rating):
    prompt = PromptFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        UserFeedback.objects.create(prompt=prompt, rating=rating, created_at=timezone.now())


def test_feedback_updates_the_prompt_mean_and_count(api_client):
    prompt = PromptFactory()

    for rating in (5, 3):
        response = api_client.post(
            reverse("api:add_feedback", args=[prompt.pk]),
            {"rating": rating, "feedback_text": "ok", "session_id": "s1"},
            content_type="application/json",
        )
        assert response.status_code == HTTPStatus.CREATED

    prompt.refresh_from_db()
    assert (prompt.feedback_count, prompt.mean_rating) == (2, 4.0)


def test_feedback_updates_every_pattern_the_prompt_belongs_to():
    prompt = PromptFactory(persona="code", phase="solutio", tags=["sql"])

    record_feedback(prompt=prompt, rating=5)

    keys = set(LearningPattern.objects.values_list("pattern_type", "pattern_key"))
    assert keys == {
        ("persona", "code"),
        ("phase", "solutio"),
        ("provider", "openai"),
        ("model", "gpt-4o-mini"),
        ("tag", "sql"),
    }


def test_pattern_confidence_grows_with_consistent_evidence():
    prompt = PromptFactory(persona="writing")
    pattern = lambda: LearningPattern.objects.get(pattern_type="persona", pattern_key="writing")  # noqa: E731

    record_feedback(prompt=prompt, rating=5)
    after_one = pattern().confidence_score
    for _ in range(9):
        record_feedback(prompt=prompt, rating=5)
    after_ten = pattern().confidence_score

    assert after_one == pytest.approx((5 * 0.5 + 1) / 6)
    assert after_ten == pytest.approx((5 * 0.5 + 10) / 15)
    assert pattern().feedback_count == 10


def test_patterns_endpoint_lists_most_confident_first(api_client):
    good = PromptFactory(persona="code")
    bad = PromptFactory(persona="writing")
    record_feedback(prompt=good, rating=5)
    record_feedback(prompt=bad, rating=1)

    response = api_client.get(reverse("api:list_patterns"), {"pattern_type": "persona"})

    assert response.status_code == HTTPStatus.OK
    assert [p["pattern_key"] for p in response.json()] == ["code", "writing"]
