"""The eval store's read path: table pages, stats and comparisons, as plain dicts.

Every filtered read goes through `evals.filters.build_filter`, so a page, its filtered
count and its filtered metrics always agree. Unfiltered totals and stats come from the
per-prompt aggregate rows and never scan results.
"""

from __future__ import annotations

import functools
import json
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date as date_type
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from alchemy_site import fastjson
from alchemy_site.errors import Invalid, NotFound
from evals import outcomes
from evals.facts import FACT_COLUMNS
from evals.filters import TABLE, build_filter, is_unfiltered, json_number, parse_filters
from evals.models import (
    Eval,
    EvalPrompt,
    EvalPromptStats,
    EvalResult,
    EvalStatus,
    EvalTag,
    FailureReason,
    PromptText,
)
from evals.outcomes import TestOutcomes
from evals.services import effective_status

MAX_PAGE = 500
RESULT_COLUMNS = (
    "id", "prompt_idx", "test_idx", "test_case", "prompt", "provider", "response", "error",
    "failure_reason", "success", "score", "latency_ms", "cost", "grading_result",
    "named_scores", "metadata",
)  # fmt: skip


def get_eval(eval_id: str) -> Eval:
    # The config (a promptfoo config can hold every test inline) and legacy_results (a
    # whole v2/v3 file, for old imports) are read and parsed only where they are used.
    found = Eval.objects.filter(pk=eval_id).defer("config", "legacy_results").first()
    if found is None:
        raise NotFound(f"No eval with id {eval_id!r}.")
    return found


# --- metrics -------------------------------------------------------------------------------


def metrics_from_counts(c: dict[str, Any]) -> dict[str, Any]:
    """Per-prompt metrics: ours (snake_case) plus promptfoo's `metrics` block."""
    n = c.get("result_count") or 0
    sums = c.get("named_score_sums") or {}
    weights = c.get("named_score_weights") or {}
    tokens = {
        "total": int(c.get("token_total") or 0),
        "prompt": int(c.get("token_prompt") or 0),
        "completion": int(c.get("token_completion") or 0),
        "cached": int(c.get("token_cached") or 0),
        "numRequests": int(c.get("token_num_requests") or 0),
        "assertions": {
            "total": int(c.get("assert_token_total") or 0),
            "prompt": int(c.get("assert_token_prompt") or 0),
            "completion": int(c.get("assert_token_completion") or 0),
            "cached": int(c.get("assert_token_cached") or 0),
        },
    }
    score = float(c.get("score_sum") or 0.0)
    latency = int(c.get("latency_sum_ms") or 0)
    cost = float(c.get("cost_sum") or 0.0)
    passes = int(c.get("pass_count") or 0)
    return {
        "result_count": n,
        "pass_count": passes,
        "fail_count": int(c.get("fail_count") or 0),
        "error_count": int(c.get("error_count") or 0),
        "pass_rate": passes / n if n else 0.0,
        "score_sum": score,
        "score_avg": score / n if n else 0.0,
        "assert_pass_count": int(c.get("assert_pass_count") or 0),
        "assert_fail_count": int(c.get("assert_fail_count") or 0),
        "latency_sum_ms": latency,
        "latency_avg_ms": latency / n if n else 0.0,
        "cost": cost,
        "tokens": tokens,
        "named_scores": {k: sums.get(k, 0.0) / w for k, w in weights.items() if w},
        "promptfoo": {
            "score": score,
            "testPassCount": passes,
            "testFailCount": int(c.get("fail_count") or 0),
            "testErrorCount": int(c.get("error_count") or 0),
            "assertPassCount": int(c.get("assert_pass_count") or 0),
            "assertFailCount": int(c.get("assert_fail_count") or 0),
            "totalLatencyMs": latency,
            "tokenUsage": tokens,
            "namedScores": dict(sums),
            "namedScoresCount": {k: int(w) for k, w in weights.items()},
            "cost": cost,
        },
    }


# Named scores summed in the aggregate pass itself, one pair of columns per key; past this
# many keys a second pass over json_each is cheaper than the extra JSON lookups.
MAX_INLINE_NAMED_SCORES = 16


def filtered_aggregates(q: Q, score_keys: list[str]) -> QuerySet:
    """One row per prompt: the aggregate columns over the results matching `q`.

    Only stored numbers and the small named_scores object are read, never the big JSON
    columns. (A view of one outcome — passes, failures, errors — reads stored sums instead.)
    """
    named: dict[str, Any] = {}
    for number, key in enumerate(score_keys):
        value = json_number("named_scores", key)
        named[f"named_sum_{number}"] = Sum(value)
        named[f"named_count_{number}"] = Count(value)
    return (
        EvalResult.objects.filter(q)
        .order_by()
        .values("prompt_idx")
        .annotate(
            result_count=Count("id"),
            pass_count=Count("id", filter=Q(success=True)),
            error_count=Count("id", filter=Q(success=False, failure_reason=FailureReason.ERROR)),
            score_sum=Sum("score"),
            latency_sum_ms=Sum("latency_ms"),
            cost_sum=Sum("cost"),
            **{column: Sum(column) for column in FACT_COLUMNS},
            **named,
        )
    )


def _filtered_counts(q: Q, score_keys: list[str] | None = None) -> dict[int, dict[str, Any]]:
    """The aggregate columns recomputed over the rows matching `q`, per prompt.

    `score_keys` are the named-score keys the eval's aggregate rows have seen (every key
    a matching row can hold); with them the named scores come from the same single pass.
    """
    inline = score_keys is not None and len(score_keys) <= MAX_INLINE_NAMED_SCORES
    inline_keys = score_keys if score_keys is not None and inline else []
    out = {}
    for row in filtered_aggregates(q, inline_keys):
        row["fail_count"] = row["result_count"] - row["pass_count"] - row["error_count"]
        for number, key in enumerate(inline_keys):
            total, count = row.pop(f"named_sum_{number}"), row.pop(f"named_count_{number}")
            if count:
                row.setdefault("named_score_sums", {})[key] = total
                row.setdefault("named_score_weights", {})[key] = float(count)
        out[row["prompt_idx"]] = row
    if not inline:
        for prompt_idx, key, total, count in _filtered_named_scores(q):
            counts = out.get(prompt_idx)
            if counts is not None:
                counts.setdefault("named_score_sums", {})[key] = total
                counts.setdefault("named_score_weights", {})[key] = float(count)
    return out


def _filtered_named_scores(q: Q) -> list[tuple[int, str, float, int]]:
    ids_sql, params = EvalResult.objects.filter(q).order_by().values("id").query.sql_with_params()
    if connection.vendor == "sqlite":
        sql = (
            f"SELECT r.prompt_idx, j.key, SUM(j.value), COUNT(*) FROM {TABLE} AS r, "
            "json_each(r.named_scores) AS j WHERE j.type IN ('integer', 'real') "
            f"AND r.id IN ({ids_sql}) GROUP BY r.prompt_idx, j.key"
        )
    else:
        sql = (
            f"SELECT r.prompt_idx, j.key, SUM((j.value #>> '{{}}')::double precision), COUNT(*) "
            f"FROM {TABLE} AS r, jsonb_each(CASE WHEN jsonb_typeof(r.named_scores) = 'object' "
            "THEN r.named_scores ELSE '{}'::jsonb END) AS j "
            f"WHERE jsonb_typeof(j.value) = 'number' AND r.id IN ({ids_sql}) "
            "GROUP BY r.prompt_idx, j.key"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _fetch(sql: str, params: list[Any]) -> tuple[list[str], list[tuple]]:
    """Column names and rows of one raw query.

    The table page's queries are written out (`_hot_sql`) rather than compiled by the ORM
    on every call: compiling its five queries was a third of a page's server time.
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [column[0] for column in cursor.description], cursor.fetchall()


@functools.cache
def _hot_sql(vendor: str) -> dict[str, str]:
    """The table page's fixed queries, once per database vendor."""
    q = connection.ops.quote_name
    stats, prompt, text = (
        q(model._meta.db_table) for model in (EvalPromptStats, EvalPrompt, PromptText)
    )
    return {
        "stats": f"SELECT * FROM {stats} WHERE {q('eval_id')} = %s",
        "prompts": (
            f"SELECT p.{q('prompt_idx')}, t.{q('text')}, p.{q('label')}, p.{q('provider')}, "
            f"p.{q('prompt_text_id')}, t.{q('content_hash')} FROM {prompt} AS p "
            f"JOIN {text} AS t ON t.{q('id')} = p.{q('prompt_text_id')} "
            f"WHERE p.{q('eval_id')} = %s ORDER BY p.{q('prompt_idx')}"
        ),
        "top": f"SELECT max({q('test_idx')}) FROM {q(TABLE)} WHERE {q('eval_id')} = %s",
        "rows": (
            f"SELECT {', '.join(_cell_column(vendor, q, c) for c in CELL_COLUMNS)} "
            f"FROM {q(TABLE)} WHERE {q('eval_id')} = %s AND {q('test_idx')} IN ({{marks}}) "
            f"ORDER BY {q('test_idx')}, {q('prompt_idx')}"
        ),
    }


# What a table cell needs of a result: its columns, but of `prompt` and `provider` only the
# text and the id, read in SQL (parsing both objects was a third of a page's JSON work).
CELL_COLUMNS = (
    "id", "prompt_idx", "test_idx", "test_case", "prompt_raw", "provider_id", "response",
    "error", "failure_reason", "success", "score", "latency_ms", "cost", "grading_result",
    "named_scores", "metadata",
)  # fmt: skip
_CELL_TEXT = {"prompt_raw": ("prompt", "raw"), "provider_id": ("provider", "id")}


def _cell_column(vendor: str, quote: Any, name: str) -> str:
    """A CELL_COLUMNS entry as SQL: a column, or a string inside a JSON column (else NULL)."""
    if name not in _CELL_TEXT:
        return quote(name)
    column, key = _CELL_TEXT[name]
    if vendor == "sqlite":
        path = f"'$.{key}'"
        return (
            f"CASE WHEN json_type({quote(column)}, {path}) = 'text' "
            f"THEN json_extract({quote(column)}, {path}) END"
        )
    return (
        f"CASE WHEN jsonb_typeof({quote(column)} -> '{key}') = 'string' "
        f"THEN {quote(column)} ->> '{key}' END"
    )


def _stored_counts(eval_id: str) -> dict[int, dict[str, Any]]:
    columns, rows = _fetch(_hot_sql(connection.vendor)["stats"], [eval_id])
    counts = {}
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        for name in ("named_score_sums", "named_score_weights", "by_outcome"):
            row[name] = fastjson_value(row[name]) or {}
        counts[row["prompt_idx"]] = row
    return counts


# Filtered counts and metrics read every matching row (a few hundred milliseconds at a
# million results) and change only when the eval does. Every write to results goes
# through evals.services, which moves the aggregate rows, the eval's last write time or
# (a rating) its updated_at, so those form the cache key's version and a hit is never
# stale; no TTL needed.
_FILTERED: OrderedDict[tuple, FilteredView] = OrderedDict()
FILTERED_CACHE_SIZE = 256
_FILTERED_LOCK = threading.Lock()
# Free-text views keep their matching test indices (8 bytes each): the cache holds at most
# this many in all (16 MB), dropping the least recently used views to stay under it.
CACHED_TESTS_BUDGET = 2_000_000
# A filtered view remembers every PAGE_STRIDE-th matching test index once a page that deep
# is asked for, so a page at any offset seeks to the nearest one and walks fewer than
# PAGE_STRIDE tests from there.
PAGE_STRIDE = 500


@dataclass
class FilteredView:
    """What one filtered view of an eval holds: its size, its metrics, where its pages are."""

    q: Q
    count: int  # matching tests
    counts: dict[int, dict[str, Any]]  # per-prompt aggregates over the matching results
    # The test index at matching positions 0, PAGE_STRIDE, 2·PAGE_STRIDE…; read on the first
    # deep page (a pass over the view's tests that its stats never need).
    marks: tuple[int, ...] | None = None
    # A free-text view's matching test indices, in order: its pages are slices of them.
    tests: array | None = None

    def page(self, offset: int, limit: int, after: int | None) -> list[int]:
        """A page of a free-text view: `offset` tests on from the cursor (or the start)."""
        assert self.tests is not None
        first = offset if after is None else bisect_right(self.tests, after) + offset
        return list(self.tests[first : first + limit])

    def start(self, offset: int) -> tuple[int | None, int]:
        """(least test index, offset from it) for the page at `offset`."""
        mark = offset // PAGE_STRIDE
        if mark == 0 or offset >= self.count:
            return None, offset
        if self.marks is None:
            self.marks = _marks(self.q)  # idempotent: a race computes the same tuple twice
        return self.marks[mark], offset - mark * PAGE_STRIDE


# The views that are one outcome's results: their stats are stored (EvalPromptStats).
OUTCOME_MODES = {"passes": "pass", "failures": "fail", "errors": "error"}


def _outcome_counts(stored: dict[int, dict[str, Any]], outcome: str) -> dict[int, dict]:
    """Per-prompt aggregates over one outcome's results, from the stored rows alone."""
    counts = {}
    for prompt_idx, row in stored.items():
        part = row["by_outcome"].get(outcome)
        if part and part.get("result_count"):
            counts[prompt_idx] = {**part, "prompt_idx": prompt_idx}
    return counts


def _search_view(q: Q, score_keys: list[str]) -> FilteredView:
    """A free-text view from one pass over its matches.

    Finding the matches (index candidates, each checked for the needle) is most of a
    search's cost, so it runs once: the count and the pages come from the matching test
    indices, the metrics from the matching ids.
    """
    sql, params = (
        EvalResult.objects.filter(q)
        .order_by()
        .values_list("id", "test_idx")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        matches = cursor.fetchall()
    if not matches:
        return FilteredView(q, 0, {}, tests=array("q"))
    ids_q = ids_in([pk for pk, _ in matches])
    tests = array("q", sorted({test_idx for _, test_idx in matches}))
    return FilteredView(ids_q, len(tests), _filtered_counts(ids_q, score_keys), tests=tests)


def ids_in(ids: list[int]) -> Q:
    """Results whose id is in `ids`, as one bound parameter however many there are."""
    column = f'"{TABLE}"."id"'
    if connection.vendor == "sqlite":
        sql, param = f"{column} IN (SELECT value FROM json_each(%s))", json.dumps(ids)
    else:
        sql, param = f"{column} = ANY(%s)", ids
    return Q(RawSQL(sql, [param], output_field=BooleanField()))


def _marks(q: Q) -> tuple[int, ...]:
    """Every PAGE_STRIDE-th test index matching `q`, in order, from one index-only walk."""
    tests = EvalResult.objects.filter(q).order_by("test_idx").values_list("test_idx").distinct()
    sql, params = tests.query.sql_with_params()
    marks: list[int] = []
    seen = 0
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(10 * PAGE_STRIDE):
            marks.extend(row[0] for row in rows[-seen % PAGE_STRIDE :: PAGE_STRIDE])
            seen += len(rows)
    return tuple(marks)


def _eval_version(eval_: Eval, stored: dict[int, dict[str, Any]]) -> str:
    return json.dumps(
        [
            eval_.created_at,
            eval_.last_written_at,
            eval_.updated_at,
            eval_.test_count,
            sorted(stored.items()),
        ],
        sort_keys=True,
        default=str,
    )


def _score_keys(stored: dict[int, dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in stored.values():
        keys.update(dict.fromkeys(row.get("named_score_weights") or {}))
    return sorted(keys)


def filtered_summary(
    *,
    eval: Eval,  # noqa: A002
    stored: dict[int, dict[str, Any]],
    mode: str,
    search: str,
    filters: Any,
    q: Q,
) -> FilteredView:
    """One filtered view's test count and per-prompt aggregates, cached."""
    text = (search or "").strip()
    key = (
        connection.alias,
        connection.settings_dict.get("NAME"),
        eval.id,
        (mode or "all").lower(),
        text,
        tuple(parse_filters(filters)),
        _eval_version(eval, stored),
    )
    with _FILTERED_LOCK:
        hit = _FILTERED.get(key)
        if hit is not None:
            _FILTERED.move_to_end(key)
            return hit
    outcome = OUTCOME_MODES.get((mode or "all").lower())
    if text:
        view = _search_view(q, _score_keys(stored))
    else:
        # The subquery's DISTINCT walks (eval, filter, test_idx) indexes in order, index-only.
        count = EvalResult.objects.filter(q).order_by().values("test_idx").distinct().count()
        if outcome and not parse_filters(filters):
            counts = _outcome_counts(stored, outcome)
        else:
            counts = _filtered_counts(q, _score_keys(stored)) if count else {}
        view = FilteredView(q, count, counts)
    with _FILTERED_LOCK:
        _FILTERED[key] = view
        while len(_FILTERED) > FILTERED_CACHE_SIZE or _cached_tests() > CACHED_TESTS_BUDGET:
            _FILTERED.popitem(last=False)
    return view


def _cached_tests() -> int:
    return sum(len(v.tests) for v in _FILTERED.values() if v.tests is not None)


def prompt_rows(eval_id: str) -> list[tuple]:
    """(prompt_idx, text, label, provider, prompt text id, content hash) per prompt."""
    return _fetch(_hot_sql(connection.vendor)["prompts"], [eval_id])[1]


def prompt_heads(
    eval_: Eval, counts: dict[int, dict[str, Any]], rows: list[tuple] | None = None
) -> list[dict[str, Any]]:
    """The table's column heads with their metrics; `rows` from `prompt_rows`, if read."""
    return [
        {
            "prompt_idx": prompt_idx,
            "raw": text,
            "label": label,
            "provider": provider,
            "prompt_id": text_id,
            "content_hash": content_hash,
            "metrics": metrics_from_counts(counts.get(prompt_idx, {})),
        }
        for prompt_idx, text, label, provider, text_id, content_hash in (
            prompt_rows(eval_.id) if rows is None else rows
        )
    ]


def eval_stats(
    *,
    eval: Eval,
    mode: str = "all",
    search: str = "",
    filters: Any = None,  # noqa: A002
) -> dict[str, Any]:
    """Per-prompt stats and the matching test count; from the aggregate rows unless a
    filter is given."""
    unfiltered = is_unfiltered(mode=mode, search=search, filters=filters)
    counts, test_count = _stored_counts(eval.id), eval.test_count
    if not unfiltered:
        q = build_filter(eval_id=eval.id, mode=mode, search=search, filters=filters)
        view = filtered_summary(
            eval=eval, stored=counts, mode=mode, search=search, filters=filters, q=q
        )
        counts, test_count = view.counts, view.count
    prompts = prompt_heads(eval, counts)
    total = {
        key: sum(p["metrics"][key] for p in prompts)
        for key in ("result_count", "pass_count", "fail_count", "error_count", "cost")
    }
    return {
        "eval_id": eval.id,
        "filtered": not unfiltered,
        "test_count": test_count,
        "prompts": prompts,
        "totals": total,
    }


# --- table ---------------------------------------------------------------------------------


def _page_indices(
    eval_: Eval,
    q: Q,
    view: FilteredView | None,
    offset: int,
    limit: int,
    after: int | None,
) -> list[int]:
    """The test indices on one page; `view` is None when the table is unfiltered."""
    if view is None and eval_.test_count:
        top = _fetch(_hot_sql(connection.vendor)["top"], [eval_.id])[1][0][0]
        if top is not None and top + 1 == eval_.test_count:
            # Dense indices 0..n-1 (the usual case): the page is arithmetic, no scan.
            first = offset if after is None else after + 1 + offset
            return list(range(first, min(first + limit, eval_.test_count)))
    if view is not None and view.tests is not None:
        return view.page(offset, limit, after)
    if after is not None:
        # Keyset: the index range starts past the cursor instead of skipping `offset`.
        q &= Q(test_idx__gt=after)
    elif view is not None:
        # Seek to the nearest mark at or before the offset instead of skipping to it.
        least, offset = view.start(offset)
        if least is not None:
            q &= Q(test_idx__gte=least)
    return list(
        EvalResult.objects.filter(q)
        .order_by("test_idx")
        .values_list("test_idx", flat=True)
        .distinct()[offset : offset + limit]
    )


def fastjson_value(value: Any) -> Any:
    """A JSON column as fetched by a raw cursor: text on SQLite (and PostgreSQL as Django
    configures psycopg), parsed here; anything else is already a value."""
    return fastjson.loads(value) if isinstance(value, str) else value


def _cells(
    eval_id: str, indices: list[int], test_cases: dict[int, Any]
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(test index, prompt index, table cell) for every result of these tests, in order.

    One raw fetch (CELL_COLUMNS) and orjson for the four JSON columns a cell shows whole;
    each test's test_case is left as text to its first row (`test_cases`). (`values()`
    ran Django's converters and json.loads on every JSON column of every cell: 7 decodes
    × 200 cells, most of a page's time.)
    """
    sql = _hot_sql(connection.vendor)["rows"].format(marks=", ".join(["%s"] * len(indices)))
    loads = fastjson_value
    for (
        pk, prompt_idx, test_idx, test_case, prompt_raw, provider_id, response, error,
        failure_reason, success, score, latency_ms, cost, grading_result, named_scores,
        metadata,
    ) in _fetch(sql, [eval_id, *indices])[1]:  # fmt: skip
        test_cases.setdefault(test_idx, test_case)
        response = loads(response)
        if not isinstance(response, dict):
            response = {}
        yield (
            test_idx,
            prompt_idx,
            {
                "id": pk,
                "prompt_idx": prompt_idx,
                "text": response.get("output"),
                "prompt": prompt_raw,
                "provider": provider_id,
                "success": bool(success),
                "score": score,
                "failure_reason": failure_reason,
                "error": error or None,
                "latency_ms": latency_ms,
                "cost": cost,
                "token_usage": response.get("tokenUsage"),
                "grading_result": loads(grading_result),
                "named_scores": loads(named_scores) or {},
                "metadata": loads(metadata) or {},
            },
        )


def table_page(
    *,
    eval: Eval,  # noqa: A002
    offset: int = 0,
    limit: int = 50,
    mode: str = "all",
    search: str = "",
    filters: Any = None,
    after_test_idx: int | None = None,
) -> dict[str, Any]:
    """One page of the results table, two-phase: test indices first, then their rows.

    `after_test_idx` (the last test index of the previous page) is a keyset cursor: the
    page starts after it (then `offset` more), which stays fast however deep the page is.
    """
    if not isinstance(offset, int) or offset < 0:
        raise Invalid("offset must be a non-negative integer.", field="offset")
    if after_test_idx is not None and (
        not isinstance(after_test_idx, int) or isinstance(after_test_idx, bool)
    ):
        raise Invalid("after_test_idx must be an integer.", field="after_test_idx")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}.", field="limit")
    unfiltered = is_unfiltered(mode=mode, search=search, filters=filters)
    q = build_filter(eval_id=eval.id, mode=mode, search=search, filters=filters)
    stored = _stored_counts(eval.id)
    heads = prompt_rows(eval.id)
    prompts = prompt_heads(eval, stored, heads)
    view = None
    if unfiltered:
        filtered_count, filtered = eval.test_count, prompts
    else:
        view = filtered_summary(
            eval=eval, stored=stored, mode=mode, search=search, filters=filters, q=q
        )
        filtered_count = view.count
        filtered = prompt_heads(eval, view.counts, heads) if filtered_count else []
    indices = _page_indices(eval, q, view, offset, limit, after_test_idx)
    body: dict[int, dict[str, Any]] = {}
    if indices:
        width = max(len(prompts), 1)
        test_cases: dict[int, Any] = {}
        for test_idx, prompt_idx, cell in _cells(eval.id, indices, test_cases):
            entry = body.get(test_idx)
            if entry is None:
                test_case = fastjson_value(test_cases[test_idx])
                test_case = test_case if isinstance(test_case, dict) else {}
                entry = body[test_idx] = {
                    "test_idx": test_idx,
                    "vars": test_case.get("vars") or {},
                    "description": test_case.get("description"),
                    "outputs": [None] * width,
                }
            if prompt_idx >= len(entry["outputs"]):
                entry["outputs"].extend([None] * (prompt_idx + 1 - len(entry["outputs"])))
            entry["outputs"][prompt_idx] = cell
    return {
        "eval_id": eval.id,
        "status": effective_status(eval),
        "head": {"prompts": prompts, "vars": list(eval.vars or [])},
        "body": [body[i] for i in indices if i in body],
        "offset": offset,
        "limit": limit,
        "total_count": eval.test_count,
        "filtered_count": filtered_count,
        "filtered_metrics": [p["metrics"] for p in filtered],
    }


# --- comparison ----------------------------------------------------------------------------

# Side by side gets unreadable past this, and each eval is one more pass over its results.
MAX_COMPARED = 6


# The few evals people compare at once, kept in each process (a 250,000-test eval holds
# ~4 MB) per eval version; behind it, the snapshot stored when an eval completes.
_OUTCOMES: OrderedDict[tuple, TestOutcomes] = OrderedDict()
OUTCOMES_CACHE_SIZE = 8
_OUTCOMES_LOCK = threading.Lock()


def test_outcomes(eval_: Eval) -> TestOutcomes:
    key = (
        connection.alias,
        connection.settings_dict.get("NAME"),
        eval_.id,
        outcomes.version_of(eval_),
    )
    with _OUTCOMES_LOCK:
        hit = _OUTCOMES.get(key)
        if hit is not None:
            _OUTCOMES.move_to_end(key)
            return hit
    found = outcomes.read(eval_)
    with _OUTCOMES_LOCK:
        _OUTCOMES[key] = found
        while len(_OUTCOMES) > OUTCOMES_CACHE_SIZE:
            _OUTCOMES.popitem(last=False)
    return found


def compare_evals(*, eval_ids: list[str], max_listed: int = 500) -> dict[str, Any]:
    """Compare evals by test index against the first: flips pass↔fail and score deltas.

    A test passes when every prompt's result for it passed; its score is the mean. Each
    eval is read test by test (evals.outcomes: a snapshot once it completed, cached in the
    process until it changes) into arrays that numpy lines up by test index. Totals and
    per-prompt metrics come from the aggregate rows, in two queries for all the evals.
    """
    eval_ids = list(dict.fromkeys(i for i in eval_ids if i))
    if len(eval_ids) < 2:
        raise Invalid("Give at least two eval ids to compare (ids=a,b).", field="ids")
    if len(eval_ids) > MAX_COMPARED:
        raise Invalid(
            f"Compare at most {MAX_COMPARED} evals at a time ({len(eval_ids)} were given).",
            field="ids",
        )
    found = {e.id: e for e in Eval.objects.filter(pk__in=eval_ids)}
    missing = [i for i in eval_ids if i not in found]
    if missing:
        raise NotFound(f"No eval with id {missing[0]!r}.", id=missing[0])
    return {
        "base": eval_ids[0],
        "evals": _compare_summaries(eval_ids, found),
        "comparisons": _compare_to_base(eval_ids[0], eval_ids[1:], found, max_listed),
    }


def _compare_summaries(eval_ids: list[str], found: dict[str, Eval]) -> list[dict[str, Any]]:
    stats: dict[str, dict[int, dict[str, Any]]] = {eval_id: {} for eval_id in eval_ids}
    for row in EvalPromptStats.objects.filter(eval_id__in=eval_ids).values():
        stats[row["eval_id"]][row["prompt_idx"]] = row
    prompts: dict[str, list[dict[str, Any]]] = {eval_id: [] for eval_id in eval_ids}
    for p in (
        EvalPrompt.objects.filter(eval_id__in=eval_ids)
        .order_by("eval_id", "prompt_idx")
        .values("eval_id", "prompt_idx", "label", "provider", "prompt_text__content_hash")
    ):
        prompts[p["eval_id"]].append(
            {
                "prompt_idx": p["prompt_idx"],
                "label": p["label"],
                "provider": p["provider"],
                "content_hash": p["prompt_text__content_hash"],
                "metrics": metrics_from_counts(stats[p["eval_id"]].get(p["prompt_idx"], {})),
            }
        )
    summaries = []
    for eval_id in eval_ids:
        counts = stats[eval_id].values()
        n = sum(c["result_count"] for c in counts)
        passes = sum(c["pass_count"] for c in counts)
        score = sum(c["score_sum"] for c in counts)
        summaries.append(
            {
                "eval_id": eval_id,
                "description": found[eval_id].description,
                "created_at": found[eval_id].created_at,
                "result_count": n,
                "test_count": found[eval_id].test_count,
                "pass_rate": passes / n if n else 0.0,
                "score_avg": score / n if n else 0.0,
                "prompts": prompts[eval_id],
            }
        )
    return summaries


def _compare_pair(
    base_id: str, base: TestOutcomes, other_id: str, other: TestOutcomes, max_listed: int
) -> dict[str, Any]:
    """One eval against the base, by test index: flips pass↔fail and the score delta."""
    common, at_base, at_other = np.intersect1d(
        base.tests, other.tests, assume_unique=True, return_indices=True
    )
    before, after = base.score[at_base], other.score[at_other]
    delta = after - before
    was, now = base.passed[at_base], other.passed[at_other]

    def listed(mask: np.ndarray) -> list[dict[str, Any]]:
        chosen = np.flatnonzero(mask)[:max_listed]
        return [
            {"test_idx": int(common[i]), "before": float(before[i]), "after": float(after[i]),
             "delta": float(delta[i])}
            for i in chosen
        ]  # fmt: skip

    failing, passing = was & ~now, now & ~was
    return {
        "base": base_id,
        "other": other_id,
        "common": len(common),
        "newly_failing": int(failing.sum()),
        "newly_passing": int(passing.sum()),
        "only_base": len(base.tests) - len(common),
        "only_other": len(other.tests) - len(common),
        "score_delta_avg": float(delta.mean()) if len(common) else 0.0,
        "newly_failing_tests": listed(failing),
        "newly_passing_tests": listed(passing),
    }


def _compare_to_base(
    base_id: str, other_ids: list[str], found: dict[str, Eval], max_listed: int
) -> list[dict]:
    base = test_outcomes(found[base_id])
    return [
        _compare_pair(base_id, base, other_id, test_outcomes(found[other_id]), max_listed)
        for other_id in other_ids
    ]


def compare_rows(*, eval_ids: list[str], test_idxs: list[int]) -> dict[str, dict[int, Any]]:
    """The results of the listed tests in each eval, one query per eval (never per test).

    `{eval_id: {test_idx: {"vars": …, "cells": {prompt_idx: cell}}}}`.
    """
    rows: dict[str, dict[int, Any]] = {}
    for eval_id in eval_ids:
        tests: dict[int, Any] = {}
        test_cases: dict[int, Any] = {}
        if test_idxs:
            for test_idx, prompt_idx, cell in _cells(eval_id, test_idxs, test_cases):
                tests.setdefault(test_idx, {"cells": {}})["cells"][prompt_idx] = cell
        for test_idx, entry in tests.items():
            test_case = fastjson_value(test_cases.get(test_idx))
            entry["vars"] = (test_case.get("vars") if isinstance(test_case, dict) else None) or {}
        rows[eval_id] = tests
    return rows


# --- eval list ---------------------------------------------------------------------------


def eval_list(
    *,
    search: str = "",
    tag: str = "",
    author: str = "",
    status: str = "",
    date: str = "",
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """Newest first; counts come from the aggregate rows (subqueries, no result scan).

    `tag` is `name` or `name=value`; `date` is `YYYY-MM-DD` or `FROM..TO` (either side
    optional); `status=interrupted` includes running evals idle past the threshold.
    """
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise Invalid(f"limit must be 1..{MAX_PAGE} and offset non-negative.", field="limit")
    evals = Eval.objects.recent()
    if search:
        evals = evals.filter(
            Q(id__icontains=search) | Q(description__icontains=search) | Q(author__icontains=search)
        )
    if author:
        evals = evals.filter(author__iexact=author)
    if tag:
        name, _, value = tag.partition("=")
        tagged = Q(eval_tags__tag__name=name)
        if "=" in tag:
            tagged &= Q(eval_tags__tag__value=value)
        evals = evals.filter(pk__in=Eval.objects.filter(tagged).values("pk"))
    if status:
        evals = evals.filter(_status_q(status))
    if date:
        evals = evals.filter(_date_q(date))
    stats = EvalPromptStats.objects.filter(eval_id=OuterRef("pk")).order_by().values("eval_id")

    def total(column: str) -> Subquery:
        return Coalesce(Subquery(stats.annotate(s=Sum(column)).values("s")), 0)

    page = list(
        evals.annotate(
            result_count=total("result_count"),
            pass_count=total("pass_count"),
            fail_count=total("fail_count"),
            error_count=total("error_count"),
        ).prefetch_related(Prefetch("eval_tags", queryset=EvalTag.objects.select_related("tag")))[
            offset : offset + limit
        ]
    )
    return {
        "count": evals.count(),
        "offset": offset,
        "limit": limit,
        "items": [eval_summary(e) for e in page],
    }


def eval_summary(e: Eval) -> dict[str, Any]:
    return {
        "id": e.id,
        "created_at": e.created_at,
        "author": e.author,
        "description": e.description,
        "status": effective_status(e),
        "is_redteam": e.is_redteam,
        "test_count": e.test_count,
        "result_count": getattr(e, "result_count", 0),
        "pass_count": getattr(e, "pass_count", 0),
        "fail_count": getattr(e, "fail_count", 0),
        "error_count": getattr(e, "error_count", 0),
        "tags": {t.tag.name: t.tag.value for t in e.eval_tags.all()},
    }


def eval_detail(eval_id: str) -> dict[str, Any]:
    e = (
        Eval.objects.filter(pk=eval_id)
        .prefetch_related(Prefetch("eval_tags", queryset=EvalTag.objects.select_related("tag")))
        .first()
    )
    if e is None:
        raise NotFound(f"No eval with id {eval_id!r}.")
    counts = _stored_counts(e.id)
    for key in ("result_count", "pass_count", "fail_count", "error_count"):
        setattr(e, key, sum(c[key] for c in counts.values()))
    return {
        **eval_summary(e),
        "config": e.config,
        "vars": list(e.vars or []),
        "duration_ms": e.duration_ms,
        "last_written_at": e.last_written_at,
        "prompts": prompt_heads(e, counts),
    }


def _status_q(status: str) -> Q:
    idle_since = timezone.now() - timedelta(seconds=settings.EVAL_IDLE_INTERRUPTED_SECONDS)
    quiet = Q(status=EvalStatus.RUNNING) & (
        Q(last_written_at__lt=idle_since)
        | Q(last_written_at__isnull=True, created_at__lt=idle_since)
    )
    if status == EvalStatus.INTERRUPTED:
        return Q(status=EvalStatus.INTERRUPTED) | quiet
    if status == EvalStatus.RUNNING:
        return Q(status=EvalStatus.RUNNING) & ~quiet
    if status in EvalStatus.values:
        return Q(status=status)
    raise Invalid(f"status must be one of {', '.join(EvalStatus.values)}.", field="status")


def _date_q(text: str) -> Q:
    def day(value: str) -> date_type | None:
        if not value:
            return None
        try:
            return date_type.fromisoformat(value)
        except ValueError:
            raise Invalid(f"date {value!r} is not YYYY-MM-DD.", field="date") from None

    if ".." in text:
        start, _, end = text.partition("..")
        q = Q()
        if day(start):
            q &= Q(created_at__date__gte=day(start))
        if day(end):
            q &= Q(created_at__date__lte=day(end))
        return q
    return Q(created_at__date=day(text))
