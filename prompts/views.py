"""Registry pages: the list and a prompt's detail. Thin: parse, call selectors/services, render."""

from __future__ import annotations

import difflib

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from alchemy_site.errors import NotFound, ServiceError
from prompts import learning, selectors, services
from prompts.filters import SORTS, PromptFilter

PAGE_SIZE = 50
CHART_WIDTH, CHART_HEIGHT = 320, 60


@require_GET
def prompt_list(request: HttpRequest) -> HttpResponse:
    filterset = PromptFilter(request.GET or None)
    sort = request.GET.get("sort", "recent")
    if sort not in SORTS:
        sort = "recent"
    queryset = filterset.qs if filterset.is_bound and filterset.is_valid() else PromptFilter({}).qs
    page = Paginator(queryset.order_by(*SORTS[sort]).prefetch_related("tags"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "prompts/list.html",
        {
            "filter": filterset,
            "page": page,
            "sort": sort,
            "sorts": list(SORTS),
            "query": query.urlencode(),
        },
    )


def history_diffs(prompt) -> list[dict]:
    """Each edit as unified-diff lines tagged add/del/ctx for colouring."""
    diffs = []
    for entry in prompt.history.all():
        lines = difflib.unified_diff(
            entry.previous_content.splitlines(),
            entry.updated_content.splitlines(),
            lineterm="",
            n=2,
        )
        tagged = []
        for line in list(lines)[2:]:
            kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
            tagged.append({"kind": kind, "text": line})
        diffs.append({"entry": entry, "lines": tagged})
    return diffs


def metric_chart(prompt) -> dict | None:
    """An SVG polyline of success rate (or, lacking it, response time) over time."""
    metrics = list(prompt.metrics.all())
    series = None
    for field, name in (("success_rate", "success rate"), ("response_time_ms", "response time ms")):
        points = [
            (m.created_at, getattr(m, field)) for m in metrics if getattr(m, field) is not None
        ]
        if len(points) >= 2:
            series = (name, points)
            break
    if series is None:
        return None
    label, points = series
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = CHART_WIDTH / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{CHART_HEIGHT - 4 - (v - low) / span * (CHART_HEIGHT - 8):.1f}"
        for i, (_, v) in enumerate(points)
    )
    return {
        "label": label,
        "points": coords,
        "low": low,
        "high": high,
        "first": points[0][0],
        "last": points[-1][0],
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }


def or_404(load, prompt_id):
    try:
        return load(prompt_id)
    except NotFound:
        raise Http404("No such prompt.") from None


@require_GET
def prompt_detail(request: HttpRequest, prompt_id) -> HttpResponse:
    prompt = or_404(selectors.prompt_detail, prompt_id)
    family = selectors.lineage(prompt_id)
    return render(
        request,
        "prompts/detail.html",
        {
            "prompt": prompt,
            "ancestors": family["ancestors"],
            "descendants": family["descendants"],
            "diffs": history_diffs(prompt),
            "chart": metric_chart(prompt),
            "feedback": prompt.feedback.all()[:20],
            "evals": selectors.evals_for_hash(prompt.content_hash),
            "ratings": range(1, 6),
        },
    )


@require_POST
def add_feedback(request: HttpRequest, prompt_id) -> HttpResponse:
    prompt = or_404(services.get_prompt, prompt_id)
    try:
        rating = int(request.POST.get("rating", ""))
        learning.record_feedback(
            prompt=prompt,
            rating=rating,
            feedback_text=request.POST.get("feedback_text", "")[:5000],
            feedback_type="page",
            session_id=request.session.session_key or "",
        )
    except (ValueError, ServiceError):
        messages.error(request, "Choose a rating from 1 to 5.")
    else:
        messages.success(request, f"Thanks — rated {rating}★.")
    return redirect("prompts:detail", prompt_id=prompt.pk)
