"""What a run shows and writes besides the database: a terminal table and promptfoo's
output envelope (`-o FILE`), both built from the run's in-memory results."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any

from evals.evaluator.assertions import as_text
from evals.evaluator.runner import Column, Tally
from evals.models import FailureReason

CELL_WIDTH = 36
# What -o can write without a stored eval (the exporters cover stored ones).
FORMATS = ("json", "jsonl")


def _cell(text: str, width: int = CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def results_table(cols: list[Column], results: list[dict[str, Any]]) -> list[str]:
    """One row per test: its vars, then each column's verdict and output."""
    by_test: dict[int, dict[int, dict[str, Any]]] = {}
    for result in results:
        by_test.setdefault(result["testIdx"], {})[result["promptIdx"]] = result
    header = ["#", "vars"] + [_cell(f"[{c.provider.label}] {c.prompt.label}") for c in cols]
    rows = [header]
    for test_idx in sorted(by_test):
        row_results = by_test[test_idx]
        first = next(iter(row_results.values()))
        vars_text = ", ".join(f"{k}={as_text(v)}" for k, v in (first.get("vars") or {}).items())
        row = [str(test_idx), _cell(vars_text)]
        for column in cols:
            result = row_results.get(column.prompt_idx)
            row.append(_cell(_verdict(result)) if result else "")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return lines


def _verdict(result: dict[str, Any]) -> str:
    if result["success"]:
        label = "PASS"
    elif result["failureReason"] == FailureReason.ERROR:
        return f"[ERROR] {result.get('error') or ''}"
    else:
        label = "FAIL"
    output = (result.get("response") or {}).get("output")
    return f"[{label} {result['score']:.2f}] {as_text(output) if output is not None else ''}"


def prompt_metrics(column: Column, results: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [r for r in results if r["promptIdx"] == column.prompt_idx]
    named: dict[str, float] = {}
    named_count: dict[str, int] = {}
    usage = {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0}
    for result in mine:
        for name, value in (result.get("namedScores") or {}).items():
            named[name] = named.get(name, 0.0) + value
            named_count[name] = named_count.get(name, 0) + 1
        for key in usage:
            usage[key] += int(((result.get("response") or {}).get("tokenUsage") or {}).get(key, 0))
    components = [
        c for r in mine for c in ((r.get("gradingResult") or {}).get("componentResults") or [])
    ]
    return {
        "score": sum(r["score"] for r in mine),
        "testPassCount": sum(1 for r in mine if r["success"]),
        "testFailCount": sum(
            1 for r in mine if not r["success"] and r["failureReason"] != FailureReason.ERROR
        ),
        "testErrorCount": sum(1 for r in mine if r["failureReason"] == FailureReason.ERROR),
        "assertPassCount": sum(1 for c in components if c["pass"]),
        "assertFailCount": sum(1 for c in components if not c["pass"]),
        "totalLatencyMs": sum(r["latencyMs"] for r in mine),
        "tokenUsage": usage,
        "namedScores": named,
        "namedScoresCount": named_count,
        "cost": sum(r["cost"] for r in mine),
    }


def envelope(
    *,
    eval_id: str | None,
    config: dict[str, Any],
    cols: list[Column],
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """promptfoo's `-o file.json` shape (results version 3)."""
    prompts = [
        {
            "raw": c.prompt.raw,
            "label": c.prompt.label,
            "provider": c.provider.label,
            "metrics": prompt_metrics(c, results),
        }
        for c in cols
    ]
    usage = {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0}
    for prompt in prompts:
        for key in usage:
            usage[key] += prompt["metrics"]["tokenUsage"][key]
    ordered = sorted(results, key=lambda r: (r["testIdx"], r["promptIdx"]))
    return {
        "evalId": eval_id,
        "results": {
            "version": 3,
            "timestamp": datetime.now(UTC).isoformat(),
            "prompts": prompts,
            "results": ordered,
            "stats": {
                "successes": sum(p["metrics"]["testPassCount"] for p in prompts),
                "failures": sum(p["metrics"]["testFailCount"] for p in prompts),
                "errors": sum(p["metrics"]["testErrorCount"] for p in prompts),
                "tokenUsage": usage,
            },
        },
        "config": config,
        "shareableUrl": None,
    }


def write_envelope(handle: IO[str], data: dict[str, Any], fmt: str) -> None:
    """`json`: the whole envelope; `jsonl`: one result per line, as the exporters write them."""
    if fmt == "jsonl":
        for result in data["results"]["results"]:
            handle.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
    else:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)


def tally_note(tally: Tally) -> str:
    """The evaluator's note on the progress bar: the pass rate so far."""
    return f"pass {tally.passes / tally.done:.0%}" if tally.done else "pass –"
