"""GET /api/traces (filtered, paginated) and GET /api/traces/{trace_id} (span tree).

No `from __future__ import annotations` here: ninja's @paginate re-wraps the
handler and cannot resolve string annotations from this module.
"""

from django.db.models import F
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.conf import settings as ninja_settings
from ninja.errors import ValidationError
from ninja.pagination import LimitOffsetPagination, paginate

from alchemy_site.api import MAX_LIMIT, MAX_OFFSET
from tracing import selectors
from tracing.filters import TraceFilter
from tracing.models import Trace
from tracing.schemas import TraceDetailOut, TraceFilters, TraceOut

router = Router(tags=["tracing"])


class BoundedPagination(LimitOffsetPagination):
    """ninja's limit/offset paging with an upper bound on offset (see MAX_OFFSET)."""

    class Input(Schema):
        limit: int = Field(ninja_settings.PAGINATION_PER_PAGE, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)


def filtered_traces(data) -> TraceFilter:
    queryset = Trace.objects.order_by(F("started_at").desc(nulls_last=True), "-id")
    return TraceFilter(data, queryset=queryset)


@router.get("", response=list[TraceOut], url_name="traces")
@paginate(BoundedPagination)
def list_traces(request: HttpRequest, filters: Query[TraceFilters]):
    filterset = filtered_traces(filters.dict(exclude_none=True))
    if not filterset.is_valid():
        raise ValidationError(
            [
                {"loc": ["query", key], "msg": "; ".join(errors)}
                for key, errors in filterset.errors.items()
            ]
        )
    return filterset.qs


@router.get("/{trace_id}", response=TraceDetailOut, url_name="trace")
def get_trace(request: HttpRequest, trace_id: str):
    trace = selectors.get_trace(trace_id)
    trace.span_tree = selectors.span_tree(trace, list(trace.spans.all()))
    return trace
