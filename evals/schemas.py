"""API shapes for the eval store; table/stats bodies are the selectors' plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Field, Schema


class EvalIn(Schema):
    id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    prompts: list[dict[str, Any]]
    tests: list[dict[str, Any]] | None = None
    tags: dict[str, str] | None = None
    author: str = ""
    description: str = ""
    created_at: datetime | None = None
    is_redteam: bool = False


class EvalSummaryOut(Schema):
    id: str
    created_at: datetime
    author: str
    description: str
    status: str
    is_redteam: bool
    test_count: int
    result_count: int
    pass_count: int
    fail_count: int
    error_count: int
    tags: dict[str, str]


class EvalListOut(Schema):
    count: int
    offset: int
    limit: int
    items: list[EvalSummaryOut]


class EvalDetailOut(EvalSummaryOut):
    config: dict[str, Any]
    vars: list[str]
    duration_ms: int | None
    last_written_at: datetime | None
    prompts: list[dict[str, Any]]


class AddResultsOut(Schema):
    stored: int
    skipped: int


class CompleteIn(Schema):
    status: str = "complete"
    duration_ms: int | None = None


class RatingIn(Schema):
    pass_: bool = Field(..., alias="pass")
    reason: str = ""


class TableOut(Schema):
    eval_id: str
    status: str
    head: dict[str, Any]
    body: list[dict[str, Any]]
    offset: int
    limit: int
    total_count: int
    filtered_count: int
    filtered_metrics: list[dict[str, Any]]


class StatsOut(Schema):
    eval_id: str
    filtered: bool
    test_count: int  # tests in the view (all of the eval's when unfiltered)
    prompts: list[dict[str, Any]]
    totals: dict[str, Any]


class CompareOut(Schema):
    base: str
    evals: list[dict[str, Any]]
    comparisons: list[dict[str, Any]]


class ResultOut(Schema):
    id: int
    eval_id: str
    test_idx: int
    prompt_idx: int
    test_case: dict[str, Any]
    prompt: dict[str, Any]
    provider: dict[str, Any]
    response: dict[str, Any] | None
    error: str
    failure_reason: int
    success: bool
    score: float
    latency_ms: int
    cost: float
    grading_result: dict[str, Any] | None
    named_scores: dict[str, Any]
    metadata: dict[str, Any]
