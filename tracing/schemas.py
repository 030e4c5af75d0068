"""API shapes for traces. Nanosecond times are strings, as in OTLP/JSON: they
exceed the integers JavaScript can hold exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator

Nanos = Annotated[str, BeforeValidator(str)]


class TraceFilters(Schema):
    eval: str | None = Field(None, description="Eval id (as sent in evaluation.id)")
    test_case: str | None = Field(None, description="Test case id (test.case.id)")
    since: datetime | None = Field(None, description="Traces that started at or after")
    until: datetime | None = Field(None, description="Traces that started before")
    name: str | None = Field(None, description="Root span name contains (case-insensitive)")
    status: Literal["unset", "ok", "error"] | None = None
    min_duration_ms: float | None = Field(None, ge=0)


class TraceOut(Schema):
    trace_id: str
    name: str
    evaluation_id: str
    eval_id: str | None = Field(None, description="Set once the eval row exists")
    test_case_id: str
    test_idx: int | None
    prompt_idx: int | None
    result_id: int | None
    started_at: datetime | None
    duration_ms: float | None
    span_count: int
    error_count: int
    status: str = Field(..., alias="get_status_code_display")
    metadata: dict[str, Any]
    created_at: datetime


class SpanOut(Schema):
    span_id: str = Field(..., alias="span.span_id")
    parent_span_id: str = Field(..., alias="span.parent_span_id")
    name: str = Field(..., alias="span.name")
    kind: str = Field(..., alias="span.get_kind_display")
    start_time_unix_nano: Nanos = Field(..., alias="span.start_time_unix_nano")
    end_time_unix_nano: Nanos = Field(..., alias="span.end_time_unix_nano")
    duration_ms: float = Field(..., alias="span.duration_ms")
    offset_ms: float = Field(..., description="Start relative to the trace's first span")
    depth: int
    status: str = Field(..., alias="span.get_status_code_display")
    status_message: str = Field(..., alias="span.status_message")
    attributes: dict[str, Any] = Field(..., alias="span.attributes")
    resource_attributes: dict[str, Any] = Field(..., alias="span.resource_attributes")
    events: list[dict[str, Any]] = Field(..., alias="span.events")
    links: list[dict[str, Any]] = Field(..., alias="span.links")
    children: list[SpanOut]


class TraceDetailOut(TraceOut):
    spans: list[SpanOut] = Field(..., alias="span_tree", description="Root spans, children nested")


SpanOut.model_rebuild()
