"""Prompt lifecycle: use, relevance decay and clean-up.

Relevance formula (all inputs stored on the prompt, so it is cheap to recompute)::

    quality   = (PRIOR_WEIGHT * PRIOR_QUALITY + Σ (rating − 1) / 4) / (PRIOR_WEIGHT + n)
    freshness = 0.5 ** (days since last use — or since creation if never used — / HALF_LIFE_DAYS)
    relevance = clamp(quality × freshness, 0, 1)

`quality` is a Bayesian average of the ratings scaled to 0–1: with no feedback it
is the prior (0.6), each rating pulls it toward what users said, and a few
ratings cannot swing it as far as many. `freshness` halves every 30 days of
disuse and returns to 1 on use. So an unrated prompt unused for 90 days sits at
0.6 × 0.125 = 0.075 — below the default clean-up threshold of 0.1 — while a
well-rated one keeps its place for longer. `effectiveness_score` is `quality`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from prompts.models import Prompt

HALF_LIFE_DAYS = 30.0
PRIOR_QUALITY = 0.6
PRIOR_WEIGHT = 2.0
SECONDS_PER_DAY = 86_400.0


def quality(*, rating_sum: int, feedback_count: int) -> float:
    scaled_sum = (rating_sum - feedback_count) / 4.0  # Σ (rating − 1) / 4
    return (PRIOR_WEIGHT * PRIOR_QUALITY + scaled_sum) / (PRIOR_WEIGHT + feedback_count)


def freshness(*, since: datetime.datetime | None, now: datetime.datetime) -> float:
    if since is None:
        return 1.0
    days = max((now - since).total_seconds() / SECONDS_PER_DAY, 0.0)
    return 0.5 ** (days / HALF_LIFE_DAYS)


def relevance(prompt: Prompt, *, now: datetime.datetime) -> float:
    q = quality(rating_sum=prompt.rating_sum, feedback_count=prompt.feedback_count)
    since = prompt.last_used_at or prompt.created_at
    return round(min(max(q * freshness(since=since, now=now), 0.0), 1.0), 6)


def record_use(*, prompt: Prompt, now: datetime.datetime | None = None) -> Prompt:
    """Count a use: usage_count + 1, last_used_at = now, relevance back to full freshness."""
    when = now or timezone.now()
    with transaction.atomic():
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        prompt.usage_count += 1
        prompt.last_used_at = when
        prompt.relevance_score = relevance(prompt, now=when)
        prompt.updated_at = when
        prompt.save(update_fields=["usage_count", "last_used_at", "relevance_score", "updated_at"])
    return prompt


def decay(
    *, now: datetime.datetime | None = None, prompt_ids: list | None = None, batch_size: int = 500
) -> Iterator[int]:
    """Recompute active prompts' relevance at `now` (all, or `prompt_ids`); yields per batch.

    Idempotent for a given clock, so it is safe to run from cron at any interval.
    `updated_at` is left alone: relevance is derived, not an edit.
    """
    when = now or timezone.now()
    fields = ("id", "rating_sum", "feedback_count", "last_used_at", "created_at", "relevance_score")
    queryset = Prompt.objects.active().order_by("id").only(*fields)
    if prompt_ids is not None:
        queryset = queryset.filter(pk__in=prompt_ids)
    last_id = None
    while True:
        page = queryset if last_id is None else queryset.filter(id__gt=last_id)
        batch = list(page[:batch_size])
        if not batch:
            return
        changed = []
        for prompt in batch:
            score = relevance(prompt, now=when)
            if score != prompt.relevance_score:
                prompt.relevance_score = score
                changed.append(prompt)
        with transaction.atomic():
            Prompt.objects.bulk_update(changed, ["relevance_score"])
        last_id = batch[-1].id
        yield len(batch)


@dataclass(frozen=True)
class CleanupPlan:
    candidates: list[Prompt]
    protected: int  # matched the thresholds but have children or feedback


def cleanup_candidates(
    *, below: float, unused_days: int, force: bool = False, now: datetime.datetime | None = None
) -> CleanupPlan:
    """Active prompts not used (or, never used, not created) lately whose relevance is < `below`.

    Relevance is judged as of `now` (not the stored score), so clean-up is right
    even when `decay` has not run recently.
    """
    when = now or timezone.now()
    cutoff = when - datetime.timedelta(days=unused_days)
    stale = Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    matched = [
        p
        for p in Prompt.objects.active().filter(stale).order_by("created_at", "id")
        if relevance(p, now=when) < below
    ]
    valuable = Q(children__isnull=False) | Q(feedback__isnull=False)
    protected_ids = set(
        Prompt.objects.filter(valuable, pk__in=[p.pk for p in matched]).values_list("id", flat=True)
    )
    if force:
        return CleanupPlan(matched, 0)
    return CleanupPlan([p for p in matched if p.pk not in protected_ids], len(protected_ids))


def cleanup(
    *, plan: CleanupPlan, delete: bool = False, now: datetime.datetime | None = None
) -> int:
    """Archive (or with `delete`, delete) the planned prompts; returns how many."""
    from prompts.services import delete_prompt

    when = now or timezone.now()
    ids = [p.pk for p in plan.candidates]
    if not delete:
        with transaction.atomic():
            return Prompt.objects.filter(pk__in=ids, archived_at__isnull=True).update(
                archived_at=when, updated_at=when
            )
    done = 0
    with transaction.atomic():
        for prompt in Prompt.objects.filter(pk__in=ids).order_by(F("created_at").desc()):
            # Children of a deleted prompt move up to its parent rather than vanish.
            done += delete_prompt(prompt=prompt, children="reparent")
    return done
