"""Trace pages: a filtered list and a waterfall per trace (login required by middleware)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from alchemy_site.errors import NotFound
from blobs.services import blobs_in
from tracing import selectors
from tracing.api import filtered_traces

PAGE_SIZE = 50


def trace_list(request: HttpRequest) -> HttpResponse:
    filterset = filtered_traces(request.GET)
    page = Paginator(
        filterset.qs if filterset.is_valid() else filterset.queryset.none(), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "tracing/trace_list.html",
        {"filter": filterset, "page": page, "query": query.urlencode()},
    )


def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    try:
        trace = selectors.get_trace(trace_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    spans = list(trace.spans.all())
    rows = selectors.waterfall(trace, spans)
    # Media moved out of span attributes, looked up once for {% blob_media %}.
    media = blobs_in([[span.attributes, span.events] for span in spans])
    return render(
        request, "tracing/trace_detail.html", {"trace": trace, "rows": rows, "media": media}
    )
