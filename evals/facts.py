"""The numbers a result's JSON holds that stats add up, taken out once, at write time.

Assertion pass/fail counts and token usage live deep inside `response` and
`grading_result`. The write path stores them in integer columns of their own (named as
the aggregate columns they feed), so the per-prompt aggregates add them without walking
JSON and filtered stats sum the columns instead of parsing every matching row's JSON
(seconds at a million rows).
"""

from __future__ import annotations

import math
from typing import Any

# In this order everywhere: EvalResult columns, the INSERT, the aggregates.
FACT_COLUMNS = (
    "assert_pass_count", "assert_fail_count",
    "token_prompt", "token_completion", "token_total", "token_cached", "token_num_requests",
    "assert_token_prompt", "assert_token_completion", "assert_token_total", "assert_token_cached",
)  # fmt: skip

# Far beyond any real count, inside a 64-bit column even when summed over many rows.
_LIMIT = 2**53


def as_count(value: Any) -> int:
    """A JSON number as a whole count; anything else (text, bool, NaN) counts as 0."""
    kind = type(value)  # exact types: bool is not an int here
    if kind is int:
        return value if -_LIMIT <= value <= _LIMIT else (_LIMIT if value > 0 else -_LIMIT)
    if kind is float and math.isfinite(value):
        return max(-_LIMIT, min(int(value), _LIMIT))
    return 0


def _counts(a: Any, b: Any, c: Any, d: Any, e: Any = 0) -> tuple[int, ...]:
    """as_count of five values (a token usage; a grader's has four, and `e` is 0), with
    the fewest steps, as this runs for every result written: non-negative whole numbers
    below 2⁵³ (nearly all) pass as they are."""
    if (
        type(a) is int and type(b) is int and type(c) is int and type(d) is int
        and type(e) is int and 0 <= a | b | c | d | e <= _LIMIT
    ):  # fmt: skip
        return a, b, c, d, e
    return tuple(map(as_count, (a, b, c, d, e)))


def result_facts(response: Any, grading_result: Any) -> tuple[int, ...]:
    """FACT_COLUMNS' values for one result, as promptfoo counts them.

    A result without `tokenUsage` still made one request; a component result without a
    truthy `pass` counts as a failed assertion.
    """
    passed = failed = 0
    grader = (0, 0, 0, 0)
    if isinstance(grading_result, dict):
        components = grading_result.get("componentResults")
        if isinstance(components, list):
            for component in components:
                if isinstance(component, dict):
                    if component.get("pass"):
                        passed += 1
                    else:
                        failed += 1
        used = grading_result.get("tokensUsed")
        if isinstance(used, dict):
            grader = _counts(used.get("prompt"), used.get("completion"), used.get("total"),
                             used.get("cached"))[:4]  # fmt: skip
    usage = response.get("tokenUsage") if isinstance(response, dict) else None
    if isinstance(usage, dict):
        get = usage.get
        tokens = _counts(get("prompt"), get("completion"), get("total"), get("cached"),
                         get("numRequests", 1))  # fmt: skip
    else:
        tokens = (0, 0, 0, 0, 1)
    return (passed, failed, *tokens, *grader)
