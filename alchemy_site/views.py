from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Recent evals, pass rate over time (per tag or description), quick links."""
    from evals import selectors
    from evals.views import pass_rate_chart, with_pass_rates

    by = request.GET.get("by", "").strip()
    history = selectors.eval_list(limit=200)["items"]
    recent = history[:8]
    with_pass_rates(recent)
    tag_names = sorted({name for item in history for name in item["tags"]})
    return render(
        request,
        "alchemy/home.html",
        {
            "recent": recent,
            "chart": pass_rate_chart(history, by=by),
            "by": by,
            "tag_names": tag_names,
            "eval_count": len(history),
        },
    )


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database responds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
