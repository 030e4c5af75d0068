"""Traces and spans received over OTLP, linked to the evals and results they explain.

Rows are written only by `tracing.services` (ingest_request, register_trace,
link_traces, prune_traces). Times are kept as integer nanoseconds, exactly as
OTLP sends them, plus a DateTimeField for filtering and retention.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SpanKind(models.IntegerChoices):
    UNSPECIFIED = 0, "unspecified"
    INTERNAL = 1, "internal"
    SERVER = 2, "server"
    CLIENT = 3, "client"
    PRODUCER = 4, "producer"
    CONSUMER = 5, "consumer"


class StatusCode(models.IntegerChoices):
    # OTLP's own numbering; ERROR is the largest, so Max() over spans finds errors.
    UNSET = 0, "unset"
    OK = 1, "ok"
    ERROR = 2, "error"


class TraceQuerySet(models.QuerySet):
    def recent(self) -> TraceQuerySet:
        return self.order_by("-started_at", "-id")

    def for_eval(self, eval_id: str) -> TraceQuerySet:
        # The raw id, not the FK: a trace may arrive before its eval row exists.
        return self.filter(evaluation_id=eval_id)


class Trace(models.Model):
    trace_id = models.CharField(max_length=32, unique=True)  # 32 lowercase hex digits
    # Traces outlive their eval (no cascade) and may arrive before it, so the link is
    # kept twice: the id as received, and a FK resolved when the eval row exists.
    evaluation_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    eval = models.ForeignKey(
        "evals.Eval",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="traces",
    )
    test_case_id = models.CharField(max_length=255, blank=True, default="")
    test_idx = models.PositiveIntegerField(null=True, blank=True)
    prompt_idx = models.PositiveIntegerField(null=True, blank=True)
    result = models.ForeignKey(
        "evals.EvalResult",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="traces",
    )
    metadata = models.JSONField(default=dict, blank=True)

    # Summaries of the spans, refreshed with every batch so listings never scan spans.
    name = models.CharField(max_length=1024, blank=True, default="")  # the root span's
    start_time_unix_nano = models.BigIntegerField(null=True, blank=True)
    end_time_unix_nano = models.BigIntegerField(null=True, blank=True)
    duration_ns = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    span_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(
        choices=StatusCode.choices, default=StatusCode.UNSET
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TraceQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["evaluation_id", "test_case_id"], name="trace_eval_testcase"),
            models.Index(fields=["started_at"], name="trace_started"),
            models.Index(fields=["status_code", "started_at"], name="trace_status_started"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} {self.name}".strip()

    @property
    def duration_ms(self) -> float | None:
        return None if self.duration_ns is None else self.duration_ns / 1e6


class Span(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans")
    span_id = models.CharField(max_length=16)  # 16 lowercase hex digits
    parent_span_id = models.CharField(max_length=16, blank=True, default="")
    name = models.CharField(max_length=1024)
    kind = models.PositiveSmallIntegerField(choices=SpanKind.choices, default=SpanKind.UNSPECIFIED)
    start_time_unix_nano = models.BigIntegerField()
    end_time_unix_nano = models.BigIntegerField()
    started_at = models.DateTimeField(db_index=True)
    status_code = models.PositiveSmallIntegerField(
        choices=StatusCode.choices, default=StatusCode.UNSET
    )
    status_message = models.TextField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    # Resource attributes, then the instrumentation scope's (otel.scope.name/version
    # included): what produced the span, shared by every span of one export.
    resource_attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["start_time_unix_nano", "id"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "span_id"], name="span_trace_span_unique"),
        ]
        indexes = [models.Index(fields=["trace", "start_time_unix_nano"], name="span_trace_start")]

    def __str__(self) -> str:
        return f"{self.span_id} {self.name}"

    @property
    def duration_ns(self) -> int:
        return max(self.end_time_unix_nano - self.start_time_unix_nano, 0)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6
