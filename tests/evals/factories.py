"""Builders for evals and promptfoo-shaped results (the write path is the only writer)."""

from __future__ import annotations

from typing import Any

from evals import services
from evals.models import Eval


def prompt(raw: str = "Say {{word}}", label: str | None = None, provider: str = "echo") -> dict:
    return {"raw": raw, "label": label or raw, "provider": provider}


def result(
    test_idx: int,
    prompt_idx: int = 0,
    *,
    success: bool = True,
    score: float | None = None,
    output: Any = "ok",
    vars: dict | None = None,
    metadata: dict | None = None,
    error: str | None = None,
    reason: str = "",
    components: list[dict] | None = None,
    named_scores: dict | None = None,
    latency_ms: int = 10,
    cost: float = 0.001,
    tokens: dict | None = None,
    failure_reason: int | None = None,
) -> dict:
    """One promptfoo EvaluateResult as found in output files."""
    vars = {"word": f"w{test_idx}"} if vars is None else vars
    grading = {
        "pass": success,
        "score": 1.0 if success else 0.0,
        "reason": reason or ("Assertion passed" if success else "Assertion failed"),
        "componentResults": components
        if components is not None
        else [
            {
                "pass": success,
                "score": 1.0 if success else 0.0,
                "reason": "",
                "assertion": {"type": "equals"},
            }
        ],
        "namedScores": named_scores or {},
    }
    data = {
        "promptIdx": prompt_idx,
        "testIdx": test_idx,
        "testCase": {"vars": vars},
        "vars": vars,
        "prompt": {"raw": f"Say {vars.get('word', '')}", "label": "Say {{word}}"},
        "provider": {"id": "echo", "label": ""},
        "response": {
            "output": output,
            "tokenUsage": tokens or {"total": 3, "prompt": 2, "completion": 1, "cached": 0},
        },
        "success": success,
        "score": (1.0 if success else 0.0) if score is None else score,
        "latencyMs": latency_ms,
        "cost": cost,
        "gradingResult": grading,
        "namedScores": named_scores or {},
        "metadata": metadata or {},
        "failureReason": failure_reason if failure_reason is not None else (0 if success else 1),
    }
    if error is not None:
        data["error"] = error
    return data


def make_eval(*, prompts: int = 2, tests: int = 0, **kwargs: Any) -> Eval:
    kwargs.setdefault("config", {"description": "factory eval"})
    return services.create_eval(
        prompts=[prompt(f"Prompt {i}: {{{{word}}}}", provider=f"p{i}") for i in range(prompts)],
        tests=[{"vars": {"word": f"w{i}"}} for i in range(tests)] or None,
        **kwargs,
    )


def grid(tests: int, prompts: int = 2, **kwargs: Any) -> list[dict]:
    return [result(t, p, **kwargs) for t in range(tests) for p in range(prompts)]
