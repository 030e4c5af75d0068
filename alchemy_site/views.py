from __future__ import annotations

import logging
from http import HTTPStatus

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


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
    """Liveness for load balancers: the process answers and the database responds; else
    503, and a balancer sends requests to another worker."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        # Unauthenticated: the error (which can name the database's host) goes to the log.
        logger.exception("healthz: the database did not answer")
        return JsonResponse(
            {
                "status": "unavailable",
                "database": connection.vendor,
                "detail": "The database did not answer; see the server's log.",
            },
            status=HTTPStatus.SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    return JsonResponse({"status": "ok", "database": connection.vendor})
