"""Streaming exports: promptfoo's v3 envelope (json), one result per line (jsonl), csv.

Each function yields text chunks; rows are read in keyset-paginated chunks so memory stays
flat in the result count. The API streams them; `export_eval` writes them to a file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch

from alchemy_site.errors import Invalid
from blobs.services import inline_blobs
from evals.models import Eval, EvalResult, EvalTag, FailureReason
from evals.selectors import RESULT_COLUMNS, _stored_counts, prompt_heads

FORMATS = ("json", "jsonl", "csv")
CHUNK = 2000


def iter_results(eval_id: str) -> Iterator[dict[str, Any]]:
    """Result rows in insertion order, fetched in keyset chunks on the primary key."""
    last = 0
    ids = EvalResult.objects.filter(eval_id=eval_id).order_by("id")
    while True:
        rows = list(ids.filter(id__gt=last).values(*RESULT_COLUMNS)[:CHUNK])
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]


def promptfoo_result(eval_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row back in promptfoo's EvaluateResult shape."""
    test_case = row["test_case"] or {}
    out = {
        "id": str(row["id"]),
        "evalId": eval_id,
        "promptIdx": row["prompt_idx"],
        "testIdx": row["test_idx"],
        "testCase": test_case,
        "vars": test_case.get("vars") or {},
        "prompt": row["prompt"] or {},
        "provider": row["provider"] or {},
        "response": row["response"],
        "success": row["success"],
        "score": row["score"],
        "latencyMs": row["latency_ms"],
        "cost": row["cost"],
        "gradingResult": row["grading_result"],
        "namedScores": row["named_scores"] or {},
        "metadata": row["metadata"] or {},
        "failureReason": row["failure_reason"],
    }
    if row["error"]:
        out["error"] = row["error"]
    return out


def _eval_with_tags(eval_id: str) -> Eval:
    return Eval.objects.prefetch_related(
        Prefetch("eval_tags", queryset=EvalTag.objects.select_related("tag"))
    ).get(pk=eval_id)


def envelope_parts(eval_: Eval) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = _stored_counts(eval_.id)
    prompts = []
    for head in prompt_heads(eval_, counts):
        prompts.append(
            {
                "raw": head["raw"],
                "label": head["label"],
                "id": head["prompt_id"],
                "provider": head["provider"],
                "metrics": head["metrics"]["promptfoo"],
            }
        )
    totals: dict[str, Any] = {"successes": 0, "failures": 0, "errors": 0}
    token_keys = ("total", "prompt", "completion", "cached", "numRequests")
    tokens = {key: 0 for key in token_keys}
    for prompt in prompts:
        metrics = prompt["metrics"]
        totals["successes"] += metrics["testPassCount"]
        totals["failures"] += metrics["testFailCount"]
        totals["errors"] += metrics["testErrorCount"]
        for key in token_keys:
            tokens[key] += metrics["tokenUsage"][key]
    totals["tokenUsage"] = tokens
    config = dict(eval_.config or {})
    tags = {t.tag.name: t.tag.value for t in eval_.eval_tags.all()}
    if tags:
        config.setdefault("tags", tags)
    head = {
        "evalId": eval_.id,
        "results": {"version": 3, "timestamp": eval_.created_at.isoformat(), "prompts": prompts},
        "config": config,
        "shareableUrl": None,
        "metadata": {
            "evaluationCreatedAt": eval_.created_at.isoformat(),
            "author": eval_.author or None,
            "description": eval_.description or None,
            "exportedBy": "alchemy",
        },
    }
    return head, totals


def exported_results(eval_id: str, *, include_media: bool = False) -> Iterator[dict[str, Any]]:
    """Stored results in promptfoo's shape; with `include_media`, blob references become
    the inline data again (for tools that cannot fetch /api/blobs)."""
    for row in iter_results(eval_id):
        result = promptfoo_result(eval_id, row)
        yield inline_blobs(result) if include_media else result


def export_json(eval_id: str, *, include_media: bool = False) -> Iterator[str]:
    """promptfoo's output/export file (`{evalId, results: {version: 3, …}, config, metadata}`)."""
    eval_ = _eval_with_tags(eval_id)
    head, totals = envelope_parts(eval_)
    results = head.pop("results")
    yield '{"evalId": ' + json.dumps(eval_.id) + ', "results": {'
    yield '"version": 3, "timestamp": ' + json.dumps(results["timestamp"])
    yield ', "prompts": ' + json.dumps(results["prompts"]) + ', "results": ['
    first = True
    for result in exported_results(eval_id, include_media=include_media):
        yield ("" if first else ",\n") + json.dumps(result)
        first = False
    yield '], "stats": ' + json.dumps(totals) + "}"
    for key in ("config", "shareableUrl", "metadata"):
        yield f", {json.dumps(key)}: " + json.dumps(head[key], default=str)
    yield "}\n"


def export_jsonl(eval_id: str, *, include_media: bool = False) -> Iterator[str]:
    """One promptfoo EvaluateResult per line."""
    for result in exported_results(eval_id, include_media=include_media):
        yield json.dumps(result) + "\n"


def export_csv(eval_id: str) -> Iterator[str]:
    eval_ = Eval.objects.get(pk=eval_id)
    var_names = list(eval_.vars or [])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["test_idx", "prompt_idx", *[f"var:{v}" for v in var_names]]
    header += ["provider", "output", "success", "score", "failure_reason", "error", "latency_ms"]
    header += ["cost", "grading_reason", "named_scores"]
    writer.writerow(header)
    for row in iter_results(eval_id):
        vars_ = (row["test_case"] or {}).get("vars") or {}
        response = row["response"] if isinstance(row["response"], dict) else {}
        output = response.get("output")
        grading = row["grading_result"] if isinstance(row["grading_result"], dict) else {}
        writer.writerow(
            [
                row["test_idx"],
                row["prompt_idx"],
                *[_cell(vars_.get(v)) for v in var_names],
                (row["provider"] or {}).get("id", ""),
                _cell(output),
                row["success"],
                row["score"],
                FailureReason(row["failure_reason"]).label,
                row["error"],
                row["latency_ms"],
                row["cost"],
                grading.get("reason", ""),
                json.dumps(row["named_scores"] or {}),
            ]
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def export_stream(eval_id: str, fmt: str, *, include_media: bool = False) -> Iterator[str]:
    """`include_media` inlines blobs in json/jsonl; csv always keeps the references."""
    if fmt == "json":
        return export_json(eval_id, include_media=include_media)
    if fmt == "jsonl":
        return export_jsonl(eval_id, include_media=include_media)
    if fmt == "csv":
        return export_csv(eval_id)
    raise Invalid(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}.", field="format")


CONTENT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}
