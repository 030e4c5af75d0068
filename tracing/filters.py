"""One FilterSet for the trace listing, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from tracing.models import StatusCode, Trace

STATUS_BY_NAME = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}


class TraceFilter(django_filters.FilterSet):
    eval = django_filters.CharFilter(field_name="evaluation_id", label="Eval id")
    test_case = django_filters.CharFilter(field_name="test_case_id", label="Test case id")
    since = django_filters.DateTimeFilter(field_name="started_at", lookup_expr="gte", label="From")
    until = django_filters.DateTimeFilter(field_name="started_at", lookup_expr="lt", label="Until")
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
