from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@pytest.fixture
def record_spans() -> Callable[..., list[ReadableSpan]]:
    """Run `body(tracer)` under a real SDK TracerProvider; return the finished spans."""

    def record(body, *, resource: dict | None = None) -> list[ReadableSpan]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create(resource or {"service.name": "tests"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        body(provider.get_tracer("tests.tracing", "1.0"))
        provider.shutdown()
        return list(exporter.get_finished_spans())

    return record
