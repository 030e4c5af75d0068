from __future__ import annotations

import pytest
from opentelemetry.trace import Status, StatusCode

from tracing.models import Span, Trace
from tracing.services import ingest_spans

pytestmark = pytest.mark.django_db


def nested(tracer):
    root_attributes = {"evaluation.id": "eval-abc"}
    with (
        tracer.start_as_current_span("eval-test", attributes=root_attributes),
        tracer.start_as_current_span("call-provider") as span,
    ):
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.set_status(Status(StatusCode.ERROR, "boom"))


def test_nested_sdk_spans_are_stored_with_their_parents(record_spans):
    spans = record_spans(nested)

    outcome = ingest_spans(spans=spans)

    assert outcome.accepted == 2 and outcome.rejected == 0
    trace = Trace.objects.get()
    root = Span.objects.get(name="eval-test")
    child = Span.objects.get(name="call-provider")
    assert child.parent_span_id == root.span_id
    assert root.parent_span_id == ""
    assert trace.name == "eval-test" and trace.span_count == 2 and trace.error_count == 1
    assert trace.evaluation_id == "eval-abc"
    sdk_child = next(s for s in spans if s.name == "call-provider")
    assert child.start_time_unix_nano == sdk_child.start_time
    assert child.end_time_unix_nano == sdk_child.end_time
    assert child.attributes["gen_ai.usage.input_tokens"] == 12
    assert child.status_message == "boom"


def test_nul_characters_and_nan_values_are_stored_safely(record_spans):
    def odd(tracer):
        with tracer.start_as_current_span("nul\x00name") as span:
            span.set_attribute("score", float("nan"))
            span.set_attribute("text", "a\x00b")

    outcome = ingest_spans(spans=record_spans(odd))

    assert outcome.accepted == 1
    span = Span.objects.get()
    assert span.name == "nul\ufffdname"
    assert span.attributes == {"score": "nan", "text": "a\ufffdb"}
