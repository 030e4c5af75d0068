"""Assertions and promptfoo's scoring rules.

Each assertion yields a component `{pass, score, reason, assertion}`. The test's score is
the weighted mean of component scores (weight defaults to 1); it passes when every
component passes, or — with a test `threshold` — when the score reaches it. A `metric`
groups assertions into a named score (their weighted mean). `not-` inverts a type.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evals.evaluator import render, schema

ASSERTION_KEYS = {"type", "value", "threshold", "weight", "metric"}
BASE_TYPES = {
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
    "icontains-all", "starts-with", "regex", "is-json", "contains-json",
    "is-valid-json-schema", "levenshtein", "similar", "python", "latency", "cost",
}  # fmt: skip
NOT_INVERTIBLE = {"latency", "cost"}
NEEDS_VALUE = BASE_TYPES - {"is-json", "contains-json", "latency", "cost"}
NEEDS_THRESHOLD = {"latency", "cost"}
DEFAULT_LEVENSHTEIN_THRESHOLD = 5
DEFAULT_SIMILAR_THRESHOLD = 0.75
PYTHON_TIMEOUT_S = 30.0


def split_type(name: str) -> tuple[str, bool]:
    """('contains', True) for 'not-contains'."""
    if name.startswith("not-") and name[4:] in BASE_TYPES - NOT_INVERTIBLE:
        return name[4:], True
    return name, False


def check_assertion(item: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems with one assertion as (key, message) pairs; empty when it can run."""
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        return [("type", "required: an assertion type such as contains or equals.")]
    base, _ = split_type(kind)
    if base in {"javascript", "not-javascript"} or kind.endswith("javascript"):
        return [("type", "javascript assertions are not supported here; use type: python.")]
    if base not in BASE_TYPES:
        known = ", ".join(sorted(BASE_TYPES))
        return [("type", f"unknown assertion type {kind!r}; known: {known} (and not-…).")]
    problems = []
    value = item.get("value")
    if base in NEEDS_VALUE and value is None:
        problems.append(("value", f"{kind} needs a value."))
    if base in {"contains-any", "contains-all", "icontains-any", "icontains-all"} and not (
        value is None or isinstance(value, str | list)
    ):
        problems.append(("value", "must be a list of strings or a comma-separated string."))
    if base == "regex" and isinstance(value, str) and "{{" not in value:
        try:
            re.compile(value)
        except re.error as exc:
            problems.append(("value", f"not a valid regular expression: {exc}."))
    if base == "python" and value is not None and not isinstance(value, str):
        problems.append(("value", "must be a Python expression or a file://path.py:function."))
    if base in NEEDS_THRESHOLD and item.get("threshold") is None:
        problems.append(("threshold", f"{kind} needs a threshold."))
    for key in ("threshold", "weight"):
        number = item.get(key)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            problems.append((key, "must be a number."))
    if isinstance(item.get("weight"), int | float) and item["weight"] < 0:
        problems.append(("weight", "must not be negative."))
    if item.get("metric") is not None and not isinstance(item["metric"], str):
        problems.append(("metric", "must be a string."))
    return problems


@dataclass
class Context:
    """What assertions see besides the output."""

    vars: dict[str, Any]
    prompt: str
    test: dict[str, Any]
    latency_ms: int = 0
    cost: float | None = None
    embed: Callable[[list[str]], np.ndarray] | None = None
    python_timeout_s: float = PYTHON_TIMEOUT_S
    extra: dict[str, Any] = field(default_factory=dict)


def grade(
    asserts: list[dict[str, Any]], output: Any, context: Context, *, threshold: float | None = None
) -> dict[str, Any]:
    """promptfoo's GradingResult for `output` under `asserts`."""
    if not asserts:
        return {
            "pass": True, "score": 1.0, "reason": "No assertions", "componentResults": [],
            "namedScores": {}, "tokensUsed": {"total": 0, "prompt": 0, "completion": 0, "cached": 0},
        }  # fmt: skip
    components = []
    total, weights = 0.0, 0.0
    metric_sums: dict[str, float] = {}
    metric_weights: dict[str, float] = {}
    failed_reason = None
    for assertion in asserts:
        component = run_assertion(assertion, output, context)
        components.append(component)
        weight = float(assertion.get("weight", 1))
        total += component["score"] * weight
        weights += weight
        metric = assertion.get("metric")
        if metric:
            metric_sums[metric] = metric_sums.get(metric, 0.0) + component["score"] * weight
            metric_weights[metric] = metric_weights.get(metric, 0.0) + weight
        if not component["pass"] and failed_reason is None:
            failed_reason = component["reason"]
    score = total / weights if weights > 0 else (1.0 if failed_reason is None else 0.0)
    named = {
        metric: (metric_sums[metric] / metric_weights[metric]) if metric_weights[metric] else 0.0
        for metric in metric_sums
    }
    passed = failed_reason is None
    reason = failed_reason or "All assertions passed"
    if threshold is not None:
        passed = score >= threshold
        comparison = "≥" if passed else "<"
        reason = f"Aggregate score {score:.2f} {comparison} {threshold} threshold"
    return {
        "pass": passed, "score": score, "reason": reason, "componentResults": components,
        "namedScores": named,
        "tokensUsed": {"total": 0, "prompt": 0, "completion": 0, "cached": 0},
    }  # fmt: skip


def run_assertion(assertion: dict[str, Any], output: Any, context: Context) -> dict[str, Any]:
    base, inverse = split_type(assertion["type"])
    value = render.render_value(assertion.get("value"), context.vars)
    threshold = assertion.get("threshold")
    try:
        passed, score, reason = CHECKS[base](output, value, threshold, context, inverse)
    except Exception as exc:  # noqa: BLE001 - a broken assertion fails, it never ends the run
        passed, score, reason = False, 0.0, f"{assertion['type']} could not run: {exc}"
    return {"pass": passed, "score": float(score), "reason": reason, "assertion": assertion}


def as_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return json.dumps(output, ensure_ascii=False)


def _binary(passed: bool, inverse: bool, ok: str, not_ok: str) -> tuple[bool, float, str]:
    passed = passed != inverse
    return (
        passed,
        1.0 if passed else 0.0,
        "Assertion passed" if passed else (not_ok if not inverse else ok),
    )


def _quote(value: Any, limit: int = 80) -> str:
    text = as_text(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _equals(output, value, threshold, context, inverse):
    if isinstance(value, dict | list):
        try:
            equal = json.loads(as_text(output)) == value
        except ValueError:
            equal = False
    else:
        equal = as_text(output) == as_text(value)
    return _binary(equal, inverse, f"Expected output not to equal {_quote(value)}",
                   f"Expected output to equal {_quote(value)}")  # fmt: skip


def _contains(output, value, threshold, context, inverse, *, fold=False):
    text, needle = as_text(output), as_text(value)
    if fold:
        text, needle = text.lower(), needle.lower()
    return _binary(needle in text, inverse, f"Expected output not to contain {_quote(value)}",
                   f"Expected output to contain {_quote(value)}")  # fmt: skip


def _values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [as_text(item) for item in value]


def _contains_some(output, value, threshold, context, inverse, *, every=False, fold=False):
    text, needles = as_text(output), _values(value)
    if fold:
        text, needles = text.lower(), [n.lower() for n in needles]
    found = [needle in text for needle in needles]
    hit = all(found) if every else any(found)
    word = "all of" if every else "one of"
    return _binary(hit, inverse, f"Expected output not to contain {word} {needles!r}",
                   f"Expected output to contain {word} {needles!r}")  # fmt: skip


def _starts_with(output, value, threshold, context, inverse):
    return _binary(as_text(output).startswith(as_text(value)), inverse,
                   f"Expected output not to start with {_quote(value)}",
                   f"Expected output to start with {_quote(value)}")  # fmt: skip


def _regex(output, value, threshold, context, inverse):
    hit = re.search(as_text(value), as_text(output)) is not None
    return _binary(hit, inverse, f"Expected output not to match /{value}/",
                   f"Expected output to match /{value}/")  # fmt: skip


def _schema_of(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    return value


def _is_json(output, value, threshold, context, inverse):
    try:
        parsed = json.loads(as_text(output)) if isinstance(output, str) else output
    except ValueError as exc:
        return _binary(
            False, inverse, "Expected output not to be JSON", f"Output is not JSON: {exc}"
        )
    problem = schema.first_error(parsed, _schema_of(value)) if value is not None else None
    if problem:
        return _binary(False, inverse, "", f"JSON does not conform to the schema: {problem}")
    return _binary(True, inverse, "Expected output not to be valid JSON", "")


def _json_candidates(text: str) -> list[Any]:
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(text):
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        found.append(value)
        index = end
    return found


def _contains_json(output, value, threshold, context, inverse):
    candidates = _json_candidates(as_text(output))
    if not candidates:
        return _binary(False, inverse, "", "Output contains no JSON")
    if value is None:
        return _binary(True, inverse, "Expected output not to contain JSON", "")
    problems = [schema.first_error(candidate, _schema_of(value)) for candidate in candidates]
    if any(problem is None for problem in problems):
        return _binary(True, inverse, "Expected output not to contain schema-conforming JSON", "")
    return _binary(
        False, inverse, "", f"No JSON in the output conforms to the schema: {problems[0]}"
    )


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


def _levenshtein(output, value, threshold, context, inverse):
    limit = DEFAULT_LEVENSHTEIN_THRESHOLD if threshold is None else threshold
    distance = levenshtein(as_text(output), as_text(value))
    return _binary(distance <= limit, inverse,
                   f"Levenshtein distance {distance} is within {limit}",
                   f"Levenshtein distance {distance} is more than {limit}")  # fmt: skip


def _similar(output, value, threshold, context, inverse):
    if context.embed is None:
        raise RuntimeError("no embedder is available")
    limit = DEFAULT_SIMILAR_THRESHOLD if threshold is None else threshold
    expected = [as_text(v) for v in value] if isinstance(value, list) else [as_text(value)]
    vectors = context.embed([as_text(output), *expected])
    similarity = float(max(vectors[1:] @ vectors[0]))
    if inverse:
        passed = similarity < limit
        return (
            passed,
            1.0 - similarity,
            ("Assertion passed" if passed else f"Similarity {similarity:.2f} is not below {limit}"),
        )
    passed = similarity >= limit
    return (
        passed,
        similarity,
        ("Assertion passed" if passed else f"Similarity {similarity:.2f} is below {limit}"),
    )


def _latency(output, value, threshold, context, inverse):
    passed = context.latency_ms <= threshold
    return (
        passed,
        1.0 if passed else 0.0,
        (
            "Assertion passed"
            if passed
            else f"Latency {context.latency_ms} ms is above {threshold} ms"
        ),
    )


def _cost(output, value, threshold, context, inverse):
    if context.cost is None:
        return False, 0.0, "The provider reported no cost for this call"
    passed = context.cost <= threshold
    return (
        passed,
        1.0 if passed else 0.0,
        ("Assertion passed" if passed else f"Cost {context.cost:.6f} is above {threshold}"),
    )


# Runs in a fresh interpreter: user code cannot touch the evaluator's state or hang it.
PYTHON_RUNNER = r"""
import importlib.util, json, os, sys
payload = json.load(sys.stdin)
result_stream, sys.stdout = sys.stdout, sys.stderr
output, context = payload["output"], payload["context"]
value = payload["value"]
if value.startswith("file://"):
    path, _, name = value[len("file://"):].partition(":")
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("alchemy_assertion", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = getattr(module, name or "get_assert")(output, context)
elif "\n" in value.strip():
    body = "\n".join("    " + line for line in value.strip().splitlines())
    scope = {}
    exec("def _alchemy_assert(output, context):\n" + body, scope)
    result = scope["_alchemy_assert"](output, context)
else:
    result = eval(value, {"output": output, "context": context, "json": json})
result_stream.write(json.dumps(result, default=str))
"""


def _python(output, value, threshold, context, inverse):
    payload = {
        "output": output,
        "value": value,
        "context": {"vars": context.vars, "prompt": context.prompt, "test": context.test},
    }
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter, code from the config
            [sys.executable, "-c", PYTHON_RUNNER],
            input=json.dumps(payload, default=str),
            capture_output=True,
            text=True,
            timeout=context.python_timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False, 0.0, f"Python assertion timed out after {context.python_timeout_s:g} s"
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return False, 0.0, f"Python assertion raised: {tail[0]}"
    result = json.loads(done.stdout)
    passed, score, reason = _interpret_python(result, threshold)
    if inverse:
        passed = not passed
        score = 1.0 - score
        reason = "Assertion passed" if passed else "Expected the Python check to fail"
    return passed, score, reason


def _interpret_python(result: Any, threshold: float | None) -> tuple[bool, float, str]:
    if isinstance(result, str) and result.strip().lower() in {"true", "false"}:
        result = result.strip().lower() == "true"
    if isinstance(result, bool):
        return (
            result,
            1.0 if result else 0.0,
            "Assertion passed" if result else "Python check returned False",
        )
    if isinstance(result, int | float):
        passed = result >= threshold if threshold is not None else result > 0
        return passed, float(result), f"Python score {result}" + ("" if passed else " is too low")
    if isinstance(result, dict) and ("pass" in result or "pass_" in result):
        passed = bool(result.get("pass", result.get("pass_")))
        score = result.get("score", 1.0 if passed else 0.0)
        reason = result.get("reason") or ("Assertion passed" if passed else "Python check failed")
        return passed, float(score), str(reason)
    raise ValueError(
        f"a Python assertion must return a bool, a number or {{pass, score, reason}}; got {result!r}"
    )


CHECKS: dict[str, Callable[..., tuple[bool, float, str]]] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": lambda *a: _contains(*a, fold=True),
    "contains-any": _contains_some,
    "contains-all": lambda *a: _contains_some(*a, every=True),
    "icontains-any": lambda *a: _contains_some(*a, fold=True),
    "icontains-all": lambda *a: _contains_some(*a, every=True, fold=True),
    "starts-with": _starts_with,
    "regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "is-valid-json-schema": _is_json,
    "levenshtein": _levenshtein,
    "similar": _similar,
    "python": _python,
    "latency": _latency,
    "cost": _cost,
}
