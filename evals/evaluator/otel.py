"""OpenTelemetry glue: the run's spans go into the project's own trace store.

Spans are collected in memory as they end and stored by the run's single writer right
after each result batch, so tracing never competes with results for SQLite's write lock
and each trace can link to its (already stored) result.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

try:
    from tracing import services as trace_store
except ImportError:  # the tracing app is optional for the evaluator
    trace_store = None  # type: ignore[assignment]

SERVICE_NAME = "alchemy-evaluator"
_PROPAGATOR = TraceContextTextMapPropagator()


class CollectingExporter(SpanExporter):
    """Holds finished spans until the writer stores them with `flush`."""

    def __init__(self) -> None:
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(spans)
        return SpanExportResult.SUCCESS

    def drain(self) -> list[ReadableSpan]:
        with self._lock:
            spans, self._spans = self._spans, []
        return spans

    def shutdown(self) -> None:
        pass


class RunTracing:
    """A tracer for one eval run and the means to store what it records."""

    def __init__(self, eval_id: str) -> None:
        self.eval_id = eval_id
        self.exporter = CollectingExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": SERVICE_NAME, "evaluation.id": eval_id})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("alchemy.evaluator")

    def flush(self) -> int:
        spans = self.exporter.drain()
        if spans and trace_store is not None:
            trace_store.ingest_spans(spans=spans)
        return len(spans)

    def finish(self) -> None:
        self.flush()
        if trace_store is not None:
            # Spans drained before their result was stored are linked now.
            trace_store.link_traces(eval_id=self.eval_id)
        # No provider.shutdown(): after Ctrl-C, abandoned calls still end their spans, and
        # the collecting exporter holds nothing that needs releasing.


def enabled() -> bool:
    return trace_store is not None


def no_op_tracer() -> trace.Tracer:
    return trace.NoOpTracer()


def traceparent_headers() -> dict[str, str]:
    """The current span's W3C `traceparent` (empty outside a recording span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
