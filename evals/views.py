"""The eval pages: list, eval (stats + results table + result drawer), compare.

Views parse the query string, call `evals.selectors` / `evals.services` and render.
Every filtered read goes through the read path's one filter builder (via the selectors);
nothing here builds a results query of its own.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alchemy_site.api import MAX_OFFSET
from alchemy_site.errors import Invalid, NotFound
from blobs.services import BLOB_URI_PREFIX, BLOB_URI_RE, blobs_in
from evals import selectors, services
from evals.filters import MODES, is_unfiltered, parse_filters
from evals.models import EvalResult

LIST_PAGE_SIZE = 25
PAGE_SIZES = (10, 25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 25
RED_TEAM_FILTERS = ("plugin", "strategy", "severity")


def _int(value: str | None, default: int, *, lowest: int = 0) -> int:
    try:
        return min(max(int(value or default), lowest), MAX_OFFSET)
    except ValueError:
        return default


def _page_window(offset: int, limit: int, total: int) -> dict[str, Any]:
    """Previous/next offsets and 'page n of m' for a page starting at `offset`."""
    pages = max((total + limit - 1) // limit, 1)
    return {
        "number": offset // limit + 1,
        "pages": pages,
        "prev": max(offset - limit, 0) if offset > 0 else None,
        "next": offset + limit if offset + limit < total else None,
        "last": (pages - 1) * limit,
    }


def _with(query: QueryDict, **changes: Any) -> str:
    """The query string with `changes` applied (None removes a key)."""
    copy = query.copy()
    for key, value in changes.items():
        copy.pop(key, None)
        if value is not None:
            copy[key] = str(value)
    return copy.urlencode()


# --- list ------------------------------------------------------------------------------


@require_GET
def eval_list(request: HttpRequest) -> HttpResponse:
    params = {
        name: request.GET.get(name, "").strip()
        for name in ("search", "tag", "author", "status", "date")
    }
    offset = _int(request.GET.get("offset"), 0)
    error = ""
    try:
        listing = selectors.eval_list(**params, offset=offset, limit=LIST_PAGE_SIZE)
    except Invalid as exc:
        error = exc.message
        listing = selectors.eval_list(offset=0, limit=LIST_PAGE_SIZE)
    with_pass_rates(listing["items"])
    return render(
        request,
        "evals/list.html",
        {
            "listing": listing,
            "params": params,
            "error": error,
            "statuses": ["running", "complete", "failed", "interrupted"],
            "window": _page_window(offset, LIST_PAGE_SIZE, listing["count"]),
            "query": request.GET,
            "prev_query": _with(request.GET, offset=None),
            # Only the unfiltered first page announces evals that arrive after it loaded.
            "watch_new": not any(params.values()) and offset == 0 and not error,
        },
    )


def with_pass_rates(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `pass_rate` (percent, one decimal; None without results) to eval summaries."""
    for item in items:
        total = item["result_count"]
        item["pass_rate"] = round(100 * item["pass_count"] / total, 1) if total else None
    return items


@require_http_methods(["GET", "POST"])
def eval_delete(request: HttpRequest, eval_id: str) -> HttpResponse:
    """GET asks for confirmation (the no-JavaScript path); POST deletes."""
    try:
        eval_ = selectors.get_eval(eval_id)
    except NotFound:
        raise Http404(f"No eval with id {eval_id!r}.") from None
    if request.method == "POST":
        services.delete_eval(eval=eval_)
        messages.success(request, f"Deleted {eval_id}.")
        return redirect("evals:list")
    return render(request, "evals/delete.html", {"eval": eval_})


# --- one eval --------------------------------------------------------------------------


def table_filters(query: QueryDict) -> tuple[list[dict[str, Any]], str]:
    """The page's simple filter fields → the read path's filter list; plus raw `filters`.

    `plugin`, `strategy`, `severity` and `meta` (key=value, or key alone for "exists")
    keep shared URLs readable; `filters` takes the API's JSON list for anything else.
    """
    specs: list[dict[str, Any]] = []
    for kind in RED_TEAM_FILTERS:
        value = query.get(kind, "").strip()
        if value:
            specs.append({"type": kind, "operator": "equals", "value": value})
    for meta in query.getlist("meta"):
        key, sep, value = meta.strip().partition("=")
        if key.strip():
            specs.append(
                {"type": "metadata", "field": key.strip(), "operator": "equals", "value": value}
                if sep
                else {"type": "metadata", "field": key.strip(), "operator": "exists"}
            )
    raw = query.get("filters", "").strip()
    if raw:
        try:
            extra = json.loads(raw)
        except ValueError:
            raise Invalid("filters must be a JSON list of filter objects.") from None
        specs.extend(extra if isinstance(extra, list) else [extra])
    return specs, raw


def _table_state(request: HttpRequest) -> dict[str, Any]:
    mode = request.GET.get("mode", "all")
    limit = _int(request.GET.get("limit"), DEFAULT_PAGE_SIZE, lowest=1)
    return {
        "mode": mode if mode in MODES else "all",
        "search": request.GET.get("search", "").strip(),
        "limit": min(limit, selectors.MAX_PAGE),
        "offset": _int(request.GET.get("offset"), 0),
        # The "Next" link's keyset cursor: the last test index of the previous page. With
        # it a deep page is an index seek; `offset` then only numbers the page.
        "after": _cursor(request.GET.get("after")),
    }


def _cursor(value: str | None) -> int | None:
    try:
        return min(max(int(value), -1), MAX_OFFSET) if value else None
    except ValueError:
        return None


def _load_eval(eval_id: str):
    try:
        return selectors.get_eval(eval_id)
    except NotFound:
        raise Http404(f"No eval with id {eval_id!r}.") from None


def _view(request: HttpRequest) -> dict[str, Any]:
    """The page's filter state; a bad filter falls back to the unfiltered view, with an error."""
    state = _table_state(request)
    try:
        filters, raw = table_filters(request.GET)
        parse_filters(filters)
        error = ""
    except Invalid as exc:
        filters, raw, error = [], request.GET.get("filters", ""), exc.message
    state.update(
        filters=filters,
        raw_filters=raw,
        error=error,
        filtered=not error
        and not is_unfiltered(mode=state["mode"], search=state["search"], filters=filters),
    )
    return state


# Query keys that belong to one request, never to the view a link or "back" should keep.
TRANSIENT = {"partial": None, "last": None}


def _here(request: HttpRequest) -> str:
    """This view's own URL (no partial or hint keys): the result pages' 'back' link."""
    query = _with(request.GET, **TRANSIENT)
    return request.path + (f"?{query}" if query else "")


def _pages_context(request: HttpRequest, state: dict[str, Any], filtered_count: int, next_after):
    return {
        "window": _page_window(state["offset"], state["limit"], filtered_count),
        "next_after": next_after,
        "prev_query": _with(request.GET, offset=None, after=None, **TRANSIENT),
    }


@require_GET
def eval_detail(request: HttpRequest, eval_id: str) -> HttpResponse:
    eval_ = _load_eval(eval_id)
    view = _view(request)
    # The live parts refresh through these partials: each reads only what it shows.
    part = request.GET.get("partial")
    if part == "stats":
        return render(request, "evals/_stats.html", {"prompts": _prompt_stats(eval_, view)})
    if part == "counts":
        return _counts(request, eval_, view)
    if view["error"]:
        page = selectors.table_page(eval=eval_, offset=0, limit=view["limit"])
    else:
        page = selectors.table_page(
            eval=eval_,
            offset=0 if view["after"] is not None else view["offset"],
            after_test_idx=view["after"],
            limit=view["limit"],
            mode=view["mode"],
            search=view["search"],
            filters=view["filters"],
        )
    prompts = page["head"]["prompts"]
    if view["filtered"]:
        for prompt, metrics in zip(prompts, page["filtered_metrics"], strict=False):
            prompt["filtered"] = metrics
        for prompt in prompts[len(page["filtered_metrics"]) :]:
            prompt["filtered"] = selectors.metrics_from_counts({})
    context = {
        "eval": eval_,
        "page": page,
        "prompts": prompts,
        "vars": page["head"]["vars"],
        "state": view,
        "here": _here(request),
        "media": _cell_media(page["body"]),
        **_pages_context(
            request,
            view,
            page["filtered_count"],
            page["body"][-1]["test_idx"] if page["body"] else None,
        ),
    }
    if part == "table":
        return render(request, "evals/_table.html", context)
    totals = {
        key: sum(p["metrics"][key] for p in prompts)
        for key in ("result_count", "pass_count", "fail_count", "error_count")
    }
    context.update(
        {
            "status": page["status"],
            "tags": list(
                eval_.eval_tags.select_related("tag").values_list("tag__name", "tag__value")
            ),
            "totals": totals,
            "raw_filters": view["raw_filters"],
            "red_team": {kind: request.GET.get(kind, "") for kind in RED_TEAM_FILTERS},
            "metas": [m for m in request.GET.getlist("meta") if m.strip()] or [""],
            "modes": MODES,
            "page_sizes": sorted({*PAGE_SIZES, view["limit"]}),
            "query": request.GET,
            "error": view["error"],
            "export_formats": ("json", "jsonl", "csv"),
        }
    )
    return render(request, "evals/detail.html", context)


def _prompt_stats(eval_, view: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-prompt cards: the eval's totals and, in a filtered view, that view's share."""
    prompts = selectors.eval_stats(eval=eval_)["prompts"]
    if view["filtered"]:
        shares = selectors.eval_stats(
            eval=eval_, mode=view["mode"], search=view["search"], filters=view["filters"]
        )["prompts"]
        by_idx = {p["prompt_idx"]: p["metrics"] for p in shares}
        for prompt in prompts:
            prompt["filtered"] = by_idx.get(prompt["prompt_idx"]) or selectors.metrics_from_counts(
                {}
            )
    return prompts


def _counts(request: HttpRequest, eval_, view: dict[str, Any]) -> HttpResponse:
    """'Showing N of M tests' and the pagination, for a live update of the table's frame.

    Unfiltered, N is the eval's stored test count (no query). Filtered, N comes from the
    read path's cached filtered summary. `last` is the last test index the page shows, the
    Next link's keyset cursor.
    """
    if view["filtered"]:
        filtered_count = selectors.eval_stats(
            eval=eval_, mode=view["mode"], search=view["search"], filters=view["filters"]
        )["test_count"]
    else:
        filtered_count = eval_.test_count
    page = {"filtered_count": filtered_count, "total_count": eval_.test_count}
    context = {
        "page": page,
        "state": view,
        **_pages_context(request, view, filtered_count, _cursor(request.GET.get("last"))),
    }
    return render(request, "evals/_counts.html", context)


# `![alt](promptfoo://blob/<sha>)`, the form results carry images in; the table shows a
# thumbnail (through {% blob_media %}) instead of the markdown.
BLOB_IMAGE_MD = re.compile(r"!\[[^\]]*\]\(\s*" + BLOB_URI_RE.pattern + r"\s*\)")


def _cell_media(body: list[dict[str, Any]]) -> dict[str, Any]:
    """Blob rows for every media reference in the page's outputs, in one query.

    Each cell with media gets `media` (the text to render thumbnails from) and its text
    without the blob URIs, so a cell shows a picture rather than `promptfoo://blob/…`.
    """
    texts = []
    for row in body:
        for cell in row["outputs"]:
            text = cell and cell["text"]
            if isinstance(text, str) and BLOB_URI_PREFIX in text:
                cell["media"] = text
                cell["text"] = BLOB_URI_RE.sub("[media]", BLOB_IMAGE_MD.sub("", text)).strip()
                texts.append(text)
    return blobs_in(texts) if texts else {}


def _traces_for(result: EvalResult) -> list[Any]:
    from tracing.models import Trace

    return list(Trace.objects.filter(result_id=result.pk).values("trace_id", "created_at")[:5])


def _safe_back(url: str) -> str:
    """Only a path on our own eval pages may be a 'back' link (no open redirects)."""
    return url if url.startswith("/evals/") and "//" not in url and "\\" not in url else ""


@require_GET
def result_detail(request: HttpRequest, eval_id: str, result_id: int) -> HttpResponse:
    """The result drawer's content; a page of its own without JavaScript."""
    result = EvalResult.objects.filter(eval_id=eval_id, pk=result_id).first()
    if result is None:
        raise Http404(f"Result {result_id} is not part of eval {eval_id!r}.")
    grading = result.grading_result if isinstance(result.grading_result, dict) else {}
    response = result.response if isinstance(result.response, dict) else {}
    output = response.get("output")
    context = {
        "eval_id": eval_id,
        "result": result,
        "output": output if isinstance(output, str) else json.dumps(output, indent=2),
        "components": [c for c in grading.get("componentResults") or [] if isinstance(c, dict)],
        "grading": grading,
        "vars": (result.test_case or {}).get("vars") or {},
        # Rendered by the blobs app's {% blob_media %} tag (images inline, audio players).
        "media_sources": [result.response, result.metadata],
        "traces": _traces_for(result),
        "back": _safe_back(request.GET.get("back", "")),
    }
    template = "evals/_result.html" if request.GET.get("partial") else "evals/result.html"
    return render(request, template, context)


@require_POST
def rate_result(request: HttpRequest, eval_id: str, result_id: int) -> HttpResponse:
    eval_ = _load_eval(eval_id)
    passed = request.POST.get("pass") == "1"
    try:
        rated = services.rate_result(
            eval=eval_,
            result_id=result_id,
            passed=passed,
            reason=request.POST.get("reason", "").strip(),
            author=request.user.get_username(),
        )
    except NotFound:
        raise Http404(f"Result {result_id} is not part of eval {eval_id!r}.") from None
    if request.headers.get("accept", "").startswith("application/json"):
        # What the page needs to redraw the rated cell without fetching the table again.
        return JsonResponse(
            {"id": result_id, "pass": passed, "score": rated.score}, status=HTTPStatus.OK
        )
    back = _safe_back(request.POST.get("back", ""))
    if back:
        return redirect(back)
    return redirect(reverse("evals:result", kwargs={"eval_id": eval_id, "result_id": result_id}))


# --- compare ---------------------------------------------------------------------------


# Per-prompt metrics compared: (key, label, format, which direction is better).
COMPARED_METRICS = (
    ("pass_rate", "Pass rate", "pct", 1),
    ("score_avg", "Score (avg)", "num", 1),
    ("latency_avg_ms", "Latency (avg)", "ms", -1),
    ("cost", "Cost (total)", "usd", -1),
    ("tokens", "Tokens (total)", "int", -1),
)
MAX_FLIP_ROWS = 200
PICKER_SIZE = 30


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    ids = [i.strip() for i in request.GET.get("ids", "").split(",") if i.strip()]
    ids += [i.strip() for i in request.GET.getlist("id") if i.strip() and i.strip() not in ids]
    base = request.GET.get("base", "").strip()
    if base in ids:
        ids.insert(0, ids.pop(ids.index(base)))
    context: dict[str, Any] = {
        "ids": ids,
        "result": None,
        "error": "",
        "max_compared": selectors.MAX_COMPARED,
    }
    if len(ids) >= 2:
        try:
            context.update(_comparison(ids, here=_here(request)))
        except (Invalid, NotFound) as exc:
            context["error"] = exc.message
    choices = with_pass_rates(selectors.eval_list(limit=PICKER_SIZE)["items"])
    listed = {c["id"] for c in choices}
    # Ids picked that the picker does not list (older evals) stay in the text field.
    context.update(choices=choices, typed_ids=",".join(i for i in ids if i not in listed))
    return render(request, "evals/compare.html", context)


def _comparison(ids: list[str], *, here: str) -> dict[str, Any]:
    result = selectors.compare_evals(eval_ids=ids, max_listed=MAX_FLIP_ROWS)
    evals = result["evals"]
    base = evals[0]
    for summary in evals:
        summary["pass_rate_pct"] = round(100 * summary["pass_rate"], 1)
        summary["pass_rate_delta"] = round(100 * (summary["pass_rate"] - base["pass_rate"]), 1)
        summary["score_delta"] = summary["score_avg"] - base["score_avg"]
    return {
        "result": result,
        "prompt_tables": _prompt_tables(evals),
        **_flip_rows(ids, result["comparisons"], here),
        "others": evals[1:],
        "compare_query": urlencode({"ids": ",".join(ids)}),
    }


def _metric_value(metrics: dict[str, Any], key: str) -> float:
    if key == "pass_rate":
        return 100 * metrics["pass_rate"]
    if key == "tokens":
        return metrics["tokens"]["total"]
    return metrics[key]


def _formatted(kind: str, value: float, *, delta: bool = False) -> str:
    if delta and abs(value) < 1e-9:
        return "±0"
    sign = "+" if delta else ""
    if kind == "pct":
        return f"{value:{sign}.1f} pts" if delta else f"{value:.1f}%"
    if kind == "ms":
        return f"{value:{sign},.0f} ms"
    if kind == "usd":
        return f"{'+' if delta and value > 0 else ''}{'-' if value < 0 else ''}${abs(value):,.4f}"
    if kind == "int":
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.3f}"


def _prompt_tables(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table per prompt position: a row per metric (named scores too), a column per
    eval, each value with its difference from the base eval's same prompt."""
    width = max(len(e["prompts"]) for e in evals)
    tables = []
    for idx in range(width):
        heads = [e["prompts"][idx] if idx < len(e["prompts"]) else None for e in evals]
        base = heads[0]
        named = sorted({k for h in heads if h for k in h["metrics"]["named_scores"]})
        specs = [*COMPARED_METRICS, *((name, name, "num", 1) for name in named)]
        rows = []
        for key, label, kind, better in specs:
            cells = []
            for position, head in enumerate(heads):
                if head is None or (key in named and key not in head["metrics"]["named_scores"]):
                    cells.append(None)
                    continue
                metrics = head["metrics"]
                value = (
                    metrics["named_scores"][key] if key in named else _metric_value(metrics, key)
                )
                cell = {"text": _formatted(kind, value) if metrics["result_count"] else "—"}
                base_has = base is not None and (
                    key not in named or key in base["metrics"]["named_scores"]
                )
                if (
                    position
                    and base_has
                    and metrics["result_count"]
                    and base["metrics"]["result_count"]
                ):
                    base_value = (
                        base["metrics"]["named_scores"][key]
                        if key in named
                        else _metric_value(base["metrics"], key)
                    )
                    diff = value - base_value
                    cell["delta"] = _formatted(kind, diff, delta=True)
                    cell["trend"] = (
                        "" if abs(diff) < 1e-9 else ("up" if diff * better > 0 else "down")
                    )
                cells.append(cell)
            rows.append({"label": label, "named": key in named, "cells": cells})
        tables.append(
            {
                "prompt_idx": idx,
                "heads": [
                    None
                    if head is None
                    else {
                        **head,
                        "same_text": base is not None
                        and head["content_hash"] == base["content_hash"],
                    }
                    for head in heads
                ],
                "rows": rows,
            }
        )
    return tables


def _flip_rows(ids: list[str], pairs: list[dict[str, Any]], here: str) -> dict[str, Any]:
    """Every test that flipped between pass and fail in some eval, with its vars and each
    eval's outputs; the rows of the listed tests come in one query per eval."""
    kinds: dict[int, dict[int, str]] = {}
    for position, pair in enumerate(pairs, start=1):
        for kind, entries in (
            ("fail", pair["newly_failing_tests"]),
            ("pass", pair["newly_passing_tests"]),
        ):
            for entry in entries:
                kinds.setdefault(entry["test_idx"], {})[position] = kind
    listed = sorted(kinds)[:MAX_FLIP_ROWS]
    fetched = selectors.compare_rows(eval_ids=ids, test_idxs=listed)
    back = urlencode({"back": here})
    rows = []
    for test_idx in listed:
        columns = []
        test_vars: dict[str, Any] = {}
        for position, eval_id in enumerate(ids):
            test = fetched[eval_id].get(test_idx)
            if test is None:
                columns.append(None)
                continue
            test_vars = test_vars or test["vars"]
            cells = [
                {
                    **cell,
                    "href": reverse(
                        "evals:result", kwargs={"eval_id": eval_id, "result_id": cell["id"]}
                    )
                    + f"?{back}",
                }
                for _, cell in sorted(test["cells"].items())
            ]
            columns.append(
                {
                    "kind": kinds[test_idx].get(position, ""),
                    "passed": all(c["success"] for c in cells),
                    "cells": cells,
                }
            )
        rows.append({"test_idx": test_idx, "vars": test_vars, "columns": columns})
    return {"flip_rows": rows, "flips_total": len(kinds), "flips_listed": len(listed)}


# --- home page chart ---------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 220, 32
CHART_SERIES = 6
CHART_TICKS = 5
SERIES_COLOURS = ("#5b3cc4", "#16a34a", "#d97706", "#dc2626", "#0891b2", "#db2777")


def pass_rate_chart(items: list[dict[str, Any]], *, by: str = "") -> dict[str, Any]:
    """Pass rate over time, one line per tag value (`by` names the tag) or description.

    Drawn as SVG coordinates on the server: no chart library, nothing to build. Each dot
    is an eval (its tooltip and link); the x axis gets a few evenly spaced dates.
    """
    series: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if not item["result_count"]:
            continue
        key = item["tags"].get(by) if by else item["description"] or "(no description)"
        if key is None:
            continue
        rate = item["pass_count"] / item["result_count"]
        series.setdefault(key or "(empty)", []).append({**item, "rate": rate})
    busiest = sorted(series.items(), key=lambda kv: -len(kv[1]))[:CHART_SERIES]
    points = [e["created_at"] for _, evals in busiest for e in evals]
    if not points:
        return {"lines": [], "width": CHART_WIDTH, "height": CHART_HEIGHT}
    start, end = min(points), max(points)
    span = (end - start).total_seconds()
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD

    def x_of(when) -> float:
        return round(
            CHART_PAD + inner_w * ((when - start).total_seconds() / span if span else 0.5), 1
        )

    lines = []
    for index, (name, evals) in enumerate(busiest):
        evals.sort(key=lambda e: e["created_at"])
        dots = [
            {
                "x": x_of(e["created_at"]),
                "y": round(CHART_PAD + inner_h * (1 - e["rate"]), 1),
                "eval_id": e["id"],
                "title": f"{e['description'] or e['id']} · {round(100 * e['rate'], 1)}% "
                f"({e['pass_count']}/{e['result_count']}) · {e['created_at']:%Y-%m-%d %H:%M}",
            }
            for e in evals
        ]
        lines.append(
            {
                "name": name,
                "colour": SERIES_COLOURS[index % len(SERIES_COLOURS)],
                "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
                "dots": dots,
                "last": round(100 * evals[-1]["rate"], 1),
            }
        )
    # Dates when the range spans days, times within one; no label twice.
    fmt = "M j" if span > 2 * 86400 else "M j H:i" if span > 3600 else "H:i:s"
    ticks: list[dict[str, Any]] = []
    for i in range(CHART_TICKS if span else 1):
        when = start + (end - start) * i / (CHART_TICKS - 1)
        label = date_format(timezone.localtime(when), fmt)
        if not ticks or ticks[-1]["label"] != label:
            ticks.append({"x": x_of(when), "label": label})
    return {
        "lines": lines,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "pad": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
        "bottom": CHART_HEIGHT - CHART_PAD,
        "mid": CHART_PAD + inner_h / 2,
        "ticks": ticks,
        "start": start,
        "end": end,
    }
