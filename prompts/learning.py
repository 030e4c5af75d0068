"""Feedback and what the registry learns from it.

Each rating updates its prompt (mean, count, effectiveness, relevance) and the
`LearningPattern` rows for the prompt's persona, phase, provider, model and tags.
A pattern's confidence is a Bayesian average of its scaled ratings::

    confidence = (PATTERN_PRIOR_WEIGHT * 0.5 + Σ (rating − 1) / 4) / (PATTERN_PRIOR_WEIGHT + n)

so one 5★ moves a pattern a little and twenty move it a lot: confidence grows
with evidence. Search can rank prompts by the confidence of their patterns.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.db.models import FloatField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from alchemy_site.errors import Invalid
from prompts import lifecycle
from prompts.models import LearningPattern, PatternType, Prompt, UserFeedback

PATTERN_PRIOR_WEIGHT = 5.0
PATTERN_PRIOR = 0.5
# Traits that are columns on Prompt; tags are handled separately (many per prompt).
COLUMN_TRAITS = {
    PatternType.PERSONA: "persona",
    PatternType.PHASE: "phase",
    PatternType.PROVIDER: "provider",
    PatternType.MODEL: "model",
}


def pattern_confidence(*, rating_sum: int, feedback_count: int) -> float:
    scaled_sum = (rating_sum - feedback_count) / 4.0
    value = (PATTERN_PRIOR_WEIGHT * PATTERN_PRIOR + scaled_sum) / (
        PATTERN_PRIOR_WEIGHT + feedback_count
    )
    return round(min(max(value, 0.0), 1.0), 6)


def prompt_traits(prompt: Prompt) -> list[tuple[str, str]]:
    traits = [(kind.value, getattr(prompt, field)) for kind, field in COLUMN_TRAITS.items()]
    traits += [(PatternType.TAG.value, name) for name in prompt.tags.values_list("name", flat=True)]
    return [(kind, key) for kind, key in traits if key]


def record_feedback(
    *,
    prompt: Prompt,
    rating: int,
    feedback_type: str = "",
    feedback_text: str = "",
    session_id: str = "",
    now: datetime.datetime | None = None,
) -> UserFeedback:
    """Store a 1–5 rating and fold it into the prompt's and its patterns' scores."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise Invalid(f"rating must be a whole number from 1 to 5; got {rating!r}.")
    when = now or timezone.now()
    with transaction.atomic():
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        feedback = UserFeedback.objects.create(
            prompt=prompt,
            rating=rating,
            feedback_type=feedback_type,
            feedback_text=feedback_text,
            session_id=session_id,
            created_at=when,
        )
        prompt.feedback_count += 1
        prompt.rating_sum += rating
        prompt.mean_rating = round(prompt.rating_sum / prompt.feedback_count, 6)
        prompt.effectiveness_score = round(
            lifecycle.quality(rating_sum=prompt.rating_sum, feedback_count=prompt.feedback_count), 6
        )
        prompt.relevance_score = lifecycle.relevance(prompt, now=when)
        prompt.save(
            update_fields=[
                "feedback_count",
                "rating_sum",
                "mean_rating",
                "effectiveness_score",
                "relevance_score",
            ]
        )
        for kind, key in prompt_traits(prompt):
            _observe(kind=kind, key=key, rating=rating, now=when)
    return feedback


def _observe(*, kind: str, key: str, rating: int, now: datetime.datetime) -> None:
    pattern, _ = LearningPattern.objects.select_for_update().get_or_create(
        pattern_type=kind, pattern_key=key, defaults={"created_at": now, "updated_at": now}
    )
    pattern.feedback_count += 1
    pattern.usage_count += 1
    pattern.rating_sum += rating
    pattern.confidence_score = pattern_confidence(
        rating_sum=pattern.rating_sum, feedback_count=pattern.feedback_count
    )
    pattern.pattern_data = {
        "mean_rating": round(pattern.rating_sum / pattern.feedback_count, 4),
        "ratings": pattern.feedback_count,
        "last_rating": rating,
    }
    pattern.updated_at = now
    pattern.save()


def with_learned_score(queryset):
    """Annotate `learned_score`: the summed confidence of each prompt's column patterns."""
    total = Value(0.0, output_field=FloatField())
    for kind, field in COLUMN_TRAITS.items():
        confidence = LearningPattern.objects.filter(
            pattern_type=kind.value, pattern_key=OuterRef(field)
        ).values("confidence_score")[:1]
        total = total + Coalesce(
            Subquery(confidence, output_field=FloatField()),
            Value(PATTERN_PRIOR, output_field=FloatField()),
        )
    return queryset.annotate(learned_score=total)
