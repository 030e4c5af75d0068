"""One filter builder for prompt listings: the API, the search endpoint and the pages use it."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from alchemy_site.errors import Invalid
from prompts.models import Persona, Phase, Prompt, Provider, SourceType, Tag

SORTS = {
    "recent": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "relevance": ("-relevance_score", "-created_at", "-id"),
    "usage": ("-usage_count", "-created_at", "-id"),
    "rating": ("-effectiveness_score", "-created_at", "-id"),
    "last_used": ("-last_used_at", "-created_at", "-id"),
}


def text_match(query: str) -> Q:
    """Every word of `query` appears in content, original_input or a tag."""
    condition = Q()
    for word in query.split():
        tagged = Tag.objects.filter(prompts=OuterRef("pk"), name__icontains=word)
        condition &= (
            Q(content__icontains=word) | Q(original_input__icontains=word) | Q(Exists(tagged))
        )
    return condition


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Compares in UTC: ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59."""

    def filter(self, qs, value):
        if value is not None and timezone.is_aware(value):
            value = value.astimezone(UTC)
        return super().filter(qs, value)


class PromptFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", label="Search")
    phase = django_filters.ChoiceFilter(choices=Phase.choices)
    provider = django_filters.ChoiceFilter(choices=Provider.choices)
    model = django_filters.CharFilter()
    persona = django_filters.ChoiceFilter(choices=Persona.choices)
    source_type = django_filters.ChoiceFilter(choices=SourceType.choices, label="Source")
    tag = django_filters.CharFilter(method="filter_tag")
    session_id = django_filters.CharFilter()
    content_hash = django_filters.CharFilter()
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    min_relevance = django_filters.NumberFilter(field_name="relevance_score", lookup_expr="gte")
    archived = django_filters.BooleanFilter(method="filter_archived")

    class Meta:
        model = Prompt
        fields: list[str] = []

    def filter_q(self, queryset, name, value):
        return queryset.filter(text_match(value)) if value.strip() else queryset

    def filter_tag(self, queryset, name, value):
        # A subquery, not a join: no duplicate rows, and tag + q can combine freely.
        return queryset.filter(
            pk__in=Tag.objects.filter(name=value.strip().lower()).values("prompts")
        )

    def filter_archived(self, queryset, name, value):
        return queryset.filter(archived_at__isnull=not value)

    @property
    def qs(self):
        queryset = super().qs
        if self.form.cleaned_data.get("archived") is None:
            queryset = queryset.active()
        return queryset


def filter_prompts(data: dict[str, Any] | None, queryset=None):
    """Apply the filters in `data` (a dict or QueryDict); a bad value is Invalid (422)."""
    clean = {k: v for k, v in (data or {}).items() if v not in (None, "")}
    if not clean:
        # What the FilterSet gives for no filters, without building and validating its form
        # (a millisecond or two: most of a semantic search's own time over numpy's).
        return (queryset if queryset is not None else Prompt.objects.all()).active()
    filterset = PromptFilter(
        clean, queryset=queryset if queryset is not None else Prompt.objects.all()
    )
    if not filterset.is_valid():
        field, errors = next(iter(filterset.errors.items()))
        raise Invalid(f"filters.{field}: {' '.join(errors)}")
    return filterset.qs
