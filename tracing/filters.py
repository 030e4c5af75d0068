"""One FilterSet for the trace listing, shared by the page and the API."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django.db.models import QuerySet
from django.utils import timezone

from tracing.models import StatusCode, Trace

STATUS_BY_NAME = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}


class UTCDateTimeFilter(django_filters.DateTimeFilter):
    """Compares in UTC: ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59."""

    def filter(self, qs, value):
        if value is not None and timezone.is_aware(value):
            value = value.astimezone(UTC)
        return super().filter(qs, value)


class TraceFilter(django_filters.FilterSet):
    eval = django_filters.CharFilter(field_name="evaluation_id", label="Eval id")
    test_case = django_filters.CharFilter(field_name="test_case_id", label="Test case id")
    since = UTCDateTimeFilter(field_name="started_at", lookup_expr="gte", label="From")
    until = UTCDateTimeFilter(field_name="started_at", lookup_expr="lt", label="Until")
    name = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name")
    status = django_filters.ChoiceFilter(
        choices=[(name, name) for name in STATUS_BY_NAME], method="filter_status", label="Status"
    )
    min_duration_ms = django_filters.NumberFilter(
        method="filter_min_duration", label="Min duration (ms)", min_value=0
    )

    class Meta:
        model = Trace
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(status_code=STATUS_BY_NAME[value])

    def filter_min_duration(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(duration_ns__gte=int(value * 1_000_000))
