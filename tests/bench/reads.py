"""The big eval: table pages (server and HTTP), stats, and the eval page's HTML."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse

from evals import selectors, services
from evals.models import EvalOutcomes, EvalResult
from tests.bench.common import (
    Context,
    Figure,
    log,
    mean_json_bytes,
    prompt_specs,
    repeat,
    result_batches,
)

PLUGIN_FILTER = [{"type": "metadata", "field": "pluginId", "operator": "equals",
                  "value": "pii:direct"}]  # fmt: skip
SEVERITY_FILTER = [{"type": "severity", "operator": "equals", "value": "critical"}]
COLD = {"filter cache": "emptied before each call"}


def build_big_eval(ctx: Context) -> None:
    """tests × 4 results through add_results, in batches of 1,000, then complete_eval."""
    eval_ = services.create_eval(
        config={"description": "bench big eval"}, prompts=prompt_specs(),
        description="bench big eval", author="bench", is_redteam=True,
    )  # fmt: skip
    stored, started, sizes = 0, time.perf_counter(), 0.0
    for number, batch in enumerate(result_batches(ctx.scale.tests, seed=3)):
        if number == 0:
            sizes = mean_json_bytes(batch)
        services.add_results(eval=eval_, results=batch)
        stored += len(batch)
        if number % 100 == 99:
            rate = stored / (time.perf_counter() - started)
            log(f"big eval: {stored:,} results ({rate:,.0f}/s)")
    elapsed = time.perf_counter() - started
    services.complete_eval(eval=eval_, duration_ms=int(elapsed * 1000))
    ctx.big_eval_id = eval_.id
    if ctx.vendor == "postgresql":
        # What autovacuum does after a bulk insert, done now rather than whenever it wakes:
        # until the visibility map is set, PostgreSQL's index-only scans read the heap too.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {EvalResult._meta.db_table}")
    ctx.add(Figure("build", "big eval built through add_results", stored / elapsed,
                   "results/s", "report", detail={"results": stored, "seconds": round(elapsed, 1),
                                                  "mean_result_json_bytes": round(sizes)}))  # fmt: skip


def pages(ctx: Context) -> dict[str, dict[str, Any]]:
    """The five table pages of the issue, as the API's query parameters."""
    return {
        "first page": {},
        f"page at test offset {ctx.scale.deep_offset:,}": {"offset": ctx.scale.deep_offset},
        f"failures, offset {ctx.scale.failures_offset:,}": {
            "mode": "failures", "offset": ctx.scale.failures_offset},
        "metadata pluginId filter": {"filters": json.dumps(PLUGIN_FILTER)},
        "severity filter": {"filters": json.dumps(SEVERITY_FILTER)},
    }  # fmt: skip


def table_call(eval_id: str, params: dict[str, Any]):
    """What GET /api/evals/{id}/table runs, minus HTTP and serialization."""

    def call() -> dict[str, Any]:
        return selectors.table_page(eval=selectors.get_eval(eval_id), limit=50, **params)

    return call


def forget_filtered() -> None:
    """Empty the selectors' cache of filtered counts: the next call computes them again."""
    with selectors._FILTERED_LOCK:
        selectors._FILTERED.clear()


def measure_pages(ctx: Context) -> None:
    """Each page as it is served again (a filtered one's counts cached after its first
    call), and the failures page once more as served on a filter new to the cache."""
    failures = f"failures, offset {ctx.scale.failures_offset:,}"
    for label, params in pages(ctx).items():
        page = table_call(ctx.big_eval_id, params)()
        timing = repeat(table_call(ctx.big_eval_id, params), budget=ctx.scale.budget_seconds)
        ok = timing.median_ms <= 5 and timing.p95_ms <= 15
        ctx.add(Figure("table (server)", f"table page: {label}", timing.median_ms, "ms median",
                       "median ≤ 5, p95 ≤ 15", ok=ok,
                       detail={**timing.summary(), "rows": len(page["body"]),
                               "filtered_count": page["filtered_count"]}))  # fmt: skip
        if label == failures:
            cold = repeat(table_call(ctx.big_eval_id, params), budget=ctx.scale.budget_seconds,
                          least=5, setup=forget_filtered)  # fmt: skip
            ctx.add(Figure("table (server)", f"table page: {label} (cold filter)",
                           cold.median_ms, "ms median", "report",
                           detail={**cold.summary(), **COLD}))  # fmt: skip


def measure_pages_http(ctx: Context) -> None:
    assert ctx.server is not None
    headers = {"Authorization": f"Bearer {ctx.api_key}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        for label, params in pages(ctx).items():
            url = f"{ctx.server.base}/api/evals/{ctx.big_eval_id}/table?" + urlencode(
                {"limit": 50, **params}
            )

            def call(url: str = url) -> None:
                client.get(url).raise_for_status()

            timing = repeat(call, budget=ctx.scale.budget_seconds)
            ctx.add(Figure("table (HTTP)", f"HTTP table page: {label}", timing.p95_ms,
                           "ms p95", "p95 ≤ 50", ok=timing.p95_ms <= 50,
                           detail=timing.summary()))  # fmt: skip


def measure_stats(ctx: Context) -> None:
    eval_id = ctx.big_eval_id

    def stats(**params: Any):
        return lambda: selectors.eval_stats(eval=selectors.get_eval(eval_id), **params)

    timing = repeat(stats(), budget=ctx.scale.budget_seconds)
    ctx.add(Figure("stats", "unfiltered counts + per-prompt stats", timing.median_ms,
                   "ms median", "≤ 2", ok=timing.median_ms <= 2,
                   detail=timing.summary()))  # fmt: skip
    for label, params in {
        "failures": {"mode": "failures"},
        "metadata pluginId filter": {"filters": PLUGIN_FILTER},
    }.items():
        # The target is for computing them: the cache is emptied before each timed call.
        cold = repeat(stats(**params), budget=ctx.scale.budget_seconds, least=5,
                      setup=forget_filtered)  # fmt: skip
        ctx.add(Figure("stats", f"filtered stats: {label}", cold.median_ms, "ms median",
                       "≤ 300", ok=cold.median_ms <= 300,
                       detail={**cold.summary(), **COLD}))  # fmt: skip
        warm = repeat(stats(**params), budget=ctx.scale.budget_seconds)
        ctx.add(Figure("stats", f"filtered stats: {label} (cached)", warm.median_ms, "ms median",
                       "report", detail=warm.summary()))  # fmt: skip


def measure_compare(ctx: Context) -> None:
    """The compare page's data: the big eval (complete) against a small running one.

    No target in the issue. Three ways: computed from the results (the big eval's snapshot
    deleted first, as after a rating), from its snapshot (evals.outcomes, stored when the
    eval completed; as in a fresh process), and cached in the process.
    """
    other = services.create_eval(
        config={}, prompts=prompt_specs(), description="bench compare", author="bench"
    )
    for batch in result_batches(2_000, seed=21):
        services.add_results(eval=other, results=batch)
    ids = [ctx.big_eval_id, other.id]

    def call() -> None:
        selectors.compare_evals(eval_ids=ids)

    def forget_cached() -> None:
        with selectors._OUTCOMES_LOCK:
            selectors._OUTCOMES.clear()

    def forget_snapshot() -> None:
        forget_cached()
        EvalOutcomes.objects.filter(eval_id=ctx.big_eval_id).delete()

    label = "compare big eval with a 2,000-test eval"
    for name, setup in (("computed", forget_snapshot), ("snapshot", forget_cached)):
        timing = repeat(call, budget=ctx.scale.budget_seconds, least=3, setup=setup)
        ctx.add(Figure("compare", f"{label} ({name})", timing.median_ms, "ms median",
                       "report", detail=timing.summary()))  # fmt: skip
    warm = repeat(call, budget=ctx.scale.budget_seconds)
    ctx.add(Figure("compare", f"{label} (cached)", warm.median_ms, "ms median", "report",
                   detail=warm.summary()))  # fmt: skip


def measure_eval_page(ctx: Context) -> None:
    """The eval page's HTML through Django's full stack in-process (middleware, templates)."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=ctx.username))
    url = reverse("evals:detail", args=[ctx.big_eval_id])

    def call() -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")

    timing = repeat(call, budget=ctx.scale.budget_seconds)
    ctx.add(Figure("page", "eval page HTML (server time)", timing.p95_ms, "ms p95",
                   "p95 ≤ 100", ok=timing.p95_ms <= 100, detail=timing.summary()))  # fmt: skip
