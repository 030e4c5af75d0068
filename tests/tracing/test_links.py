"""How traces find their eval and result: attributes, traceparent registration, later links."""

from __future__ import annotations

import pytest
from django.utils import timezone

from evals.models import Eval, EvalResult
from tests.tracing.factories import export_of, make_trace, otlp_span
from tracing.models import Trace
from tracing.selectors import get_trace
from tracing.services import ingest_request, link_traces, parse_traceparent, register_trace

pytestmark = pytest.mark.django_db

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def make_eval(eval_id: str = "eval-link-2025-01-13T10:30:45") -> Eval:
    return Eval.objects.create(id=eval_id, created_at=timezone.now())


def test_a_traceparent_is_parsed_into_trace_and_parent_ids():
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-01") == (TRACE, SPAN)
    assert parse_traceparent(f"00-{'0' * 32}-{SPAN}-01") is None
    assert parse_traceparent("garbage") is None


def test_spans_of_a_registered_trace_link_without_any_attributes():
    evaluation = make_eval()
    result = EvalResult.objects.create(eval=evaluation, test_idx=2, prompt_idx=0)
    trace_id, parent = parse_traceparent(f"00-{TRACE}-{SPAN}-01")
    register_trace(
        trace_id=trace_id,
        eval_id=evaluation.id,
        test_case_id="2-0",
        test_idx=2,
        prompt_idx=0,
        metadata={"vars": {"q": "hi"}},
    )

    ingest_request(
        request=export_of(otlp_span(TRACE, "1111111111111111", "provider", parent=parent))
    )

    trace = Trace.objects.get()
    assert (trace.eval_id, trace.result_id, trace.test_case_id) == (evaluation.id, result.pk, "2-0")
    assert trace.span_count == 1 and trace.name == "provider"
    assert trace.metadata == {"vars": {"q": "hi"}}


def test_registering_after_the_spans_arrived_links_them_too():
    evaluation = make_eval()
    ingest_request(request=export_of(otlp_span(TRACE, SPAN, "early")))

    register_trace(trace_id=TRACE.upper(), eval_id=evaluation.id)

    trace = Trace.objects.get()
    assert trace.eval_id == evaluation.id and trace.span_count == 1


def test_a_trace_that_arrives_before_its_eval_links_once_the_eval_exists():
    trace = make_trace(eval_id="eval-later")
    assert trace.eval_id is None

    make_eval("eval-later")

    assert get_trace(trace.trace_id).eval_id == "eval-later"  # resolved on read
    assert link_traces(eval_id="eval-later") == 1
    assert Trace.objects.get().eval_id == "eval-later"
    assert list(Trace.objects.for_eval("eval-later")) == [trace]


def test_deleting_an_eval_keeps_its_traces():
    evaluation = make_eval()
    make_trace(eval_id=evaluation.id)

    evaluation.delete()

    trace = Trace.objects.get()
    assert trace.eval_id is None and trace.evaluation_id == "eval-link-2025-01-13T10:30:45"
    assert trace.span_count == 2


def test_resource_attributes_can_carry_the_eval_id():
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = export_of(otlp_span(TRACE, SPAN, "s"))
    request.resource_spans[0].resource.attributes.append(
        KeyValue(key="evaluation.id", value=AnyValue(string_value="eval-res"))
    )

    ingest_request(request=request)

    assert Trace.objects.get().evaluation_id == "eval-res"
