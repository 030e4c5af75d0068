"""The real OpenTelemetry SDK exporting to a live server's /v1/traces."""

from __future__ import annotations

import gzip
import hashlib
import json

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from blobs.models import Blob
from blobs.services import blob_uri
from evals.evaluator.otel import RunTracing, traceparent_headers
from evals.models import Eval, EvalResult
from tests.tracing.factories import b64, data_url, png_bytes, wav_bytes
from tracing.models import Span, Trace
from tracing.models import StatusCode as StoredStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def endpoint(live_server) -> str:
    return f"{live_server.url}/v1/traces"


def exporter_for(endpoint: str, api_key: str, **kwargs) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=endpoint, headers={"Authorization": f"Bearer {api_key}"}, timeout=10, **kwargs
    )


def run_provider(exporter: OTLPSpanExporter, body) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "provider-under-test"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    body(provider.get_tracer("tests.tracing", "2.0"))
    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()


def rag_pipeline(tracer) -> None:
    with tracer.start_as_current_span("rag", attributes={"evaluation.id": "eval-live:1"}):
        with tracer.start_as_current_span("retrieve") as retrieve:
            retrieve.set_attribute("db.rows", 3)
            retrieve.set_attribute("db.password", "hunter2")
            retrieve.add_event("cache-miss", {"key": "q1"})
        with tracer.start_as_current_span("generate") as generate:
            generate.set_attribute("gen_ai.prompt", "x" * 5000)
            generate.set_attribute("http.route", "r" * 500)
            generate.set_status(Status(StatusCode.ERROR, "rate limited"))


def test_sdk_protobuf_export_stores_nested_spans_with_parents_times_and_status(
    endpoint, api_key, record_spans
):
    run_provider(exporter_for(endpoint, api_key), rag_pipeline)

    trace = Trace.objects.get()
    spans = {span.name: span for span in Span.objects.all()}
    assert set(spans) == {"rag", "retrieve", "generate"}
    assert spans["retrieve"].parent_span_id == spans["rag"].span_id
    assert spans["generate"].parent_span_id == spans["rag"].span_id
    assert spans["generate"].status_code == StoredStatus.ERROR
    assert spans["generate"].status_message == "rate limited"
    assert spans["retrieve"].attributes["db.rows"] == 3
    assert spans["retrieve"].events[0]["name"] == "cache-miss"
    assert spans["rag"].resource_attributes["service.name"] == "provider-under-test"
    assert spans["rag"].resource_attributes["otel.scope.name"] == "tests.tracing"
    assert trace.name == "rag"
    assert trace.span_count == 3
    assert trace.status_code == StoredStatus.ERROR
    assert trace.evaluation_id == "eval-live:1"


def test_sdk_export_keeps_nanosecond_times_exactly(endpoint, api_key, record_spans):
    spans = record_spans(rag_pipeline)

    result = exporter_for(endpoint, api_key).export(spans)

    assert result is SpanExportResult.SUCCESS
    stored = {span.span_id: span for span in Span.objects.all()}
    for span in spans:
        row = stored[f"{span.context.span_id:016x}"]
        assert row.start_time_unix_nano == span.start_time
        assert row.end_time_unix_nano == span.end_time
    trace = Trace.objects.get()
    assert trace.trace_id == f"{spans[0].context.trace_id:032x}"
    assert trace.duration_ns == max(s.end_time for s in spans) - min(s.start_time for s in spans)


def test_secrets_are_redacted_and_long_values_truncated_before_storage(endpoint, api_key):
    run_provider(exporter_for(endpoint, api_key), rag_pipeline)

    retrieve = Span.objects.get(name="retrieve")
    generate = Span.objects.get(name="generate")
    assert retrieve.attributes["db.password"] == "[REDACTED]"
    assert generate.attributes["gen_ai.prompt"].startswith("x" * 4096 + "…")
    assert "truncated 904 chars" in generate.attributes["gen_ai.prompt"]
    assert generate.attributes["http.route"].startswith("r" * 400 + "…")


def test_gzip_compressed_exports_are_accepted(endpoint, api_key):
    run_provider(exporter_for(endpoint, api_key, compression=Compression.Gzip), rag_pipeline)

    assert Span.objects.count() == 3


def test_replaying_the_same_export_stores_each_span_once(endpoint, api_key, record_spans):
    spans = record_spans(rag_pipeline)
    exporter = exporter_for(endpoint, api_key)

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert exporter.export(spans) is SpanExportResult.SUCCESS

    assert Span.objects.count() == 3
    assert Trace.objects.get().span_count == 3


def test_an_export_without_an_api_key_is_refused_and_stores_nothing(endpoint, record_spans):
    spans = record_spans(rag_pipeline)

    result = OTLPSpanExporter(endpoint=endpoint, timeout=10).export(spans)

    assert result is SpanExportResult.FAILURE
    assert not Span.objects.exists()


def test_an_export_over_the_size_limit_is_refused_with_413(
    endpoint, api_key, settings, record_spans
):
    settings.OTLP_MAX_BODY_BYTES = 1024
    spans = record_spans(rag_pipeline)  # its 5,000-char prompt alone is over the limit

    result = exporter_for(endpoint, api_key).export(spans)
    response = httpx.post(
        endpoint,
        content=encode_spans(spans).SerializeToString(),
        headers={"x-api-key": api_key, "Content-Type": "application/x-protobuf"},
    )

    assert result is SpanExportResult.FAILURE
    assert response.status_code == 413
    assert "larger than 1024 bytes" in status_pb2.Status.FromString(response.content).message
    assert not Span.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"\xff\xff not protobuf", "application/x-protobuf", 400),
        (b'{"resourceSpans": 7}', "application/json", 400),
        (b"<spans/>", "application/xml", 415),
    ],
)
def test_malformed_or_unknown_bodies_are_refused(endpoint, api_key, content, content_type, status):
    response = httpx.post(
        endpoint,
        content=content,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": content_type},
    )

    assert response.status_code == status
    assert not Span.objects.exists()


def test_sdk_request_sent_as_otlp_json_is_stored(endpoint, api_key, record_spans):
    spans = record_spans(rag_pipeline)
    body = json_format.MessageToJson(encode_spans(spans))  # base64 ids, int64 as strings

    response = httpx.post(
        endpoint,
        content=body,
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json; charset=utf-8",
        },
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert Span.objects.count() == 3
    child = Span.objects.get(name="retrieve")
    sdk_child = next(s for s in spans if s.name == "retrieve")
    assert child.start_time_unix_nano == sdk_child.start_time


def test_hand_written_json_with_hex_ids_and_gzip_is_stored(endpoint, api_key):
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "js-provider"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "root",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000123456789",
                                "endTimeUnixNano": "1700000001123456789",
                                "attributes": [
                                    {"key": "x-api-key", "value": {"stringValue": "sk-123"}},
                                    {"key": "retries", "value": {"intValue": "2"}},
                                ],
                                "status": {"code": 1},
                            },
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b175",
                                "parentSpanId": "eee19b7ec3c1b174",
                                "name": "child",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": "1700000000223456789",
                                "endTimeUnixNano": "1700000000323456789",
                            },
                        ],
                    }
                ],
            }
        ]
    }

    response = httpx.post(
        endpoint,
        content=gzip.compress(json.dumps(body).encode()),
        headers={
            "x-api-key": api_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )

    assert response.status_code == 200, response.text
    root = Span.objects.get(name="root")
    child = Span.objects.get(name="child")
    assert root.trace.trace_id == "5b8efff798038103d269b633813fc60c"
    assert child.parent_span_id == "eee19b7ec3c1b174"
    assert root.start_time_unix_nano == 1_700_000_000_123_456_789
    assert root.attributes == {"x-api-key": "[REDACTED]", "retries": 2}
    assert child.kind == 3


def test_spans_link_to_an_existing_eval_and_result_by_attribute(endpoint, api_key):
    evaluation = Eval.objects.create(id="eval-live:1", created_at=timezone.now())
    result = EvalResult.objects.create(eval=evaluation, test_idx=4, prompt_idx=1)

    def traced(tracer):
        attributes = {
            "evaluation.id": evaluation.id,
            "test.case.id": "case-4",
            "test.index": 4,
            "prompt.index": 1,
        }
        with tracer.start_as_current_span("test-case", attributes=attributes):
            pass

    run_provider(exporter_for(endpoint, api_key), traced)

    trace = Trace.objects.get()
    assert trace.eval_id == evaluation.id
    assert trace.test_case_id == "case-4"
    assert trace.result_id == result.pk


def test_media_in_a_json_body_and_an_audio_attribute_is_stored_as_blobs(endpoint, api_key):
    image, audio = png_bytes(seed=1), wav_bytes(seed=1)
    body = json.dumps({"choices": [{"message": {"content": data_url(image)}}]})

    def traced(tracer):
        with tracer.start_as_current_span("call-provider") as span:
            span.set_attribute("http.response.body", body)
            span.set_attribute("gen_ai.output.audio", b64(audio))

    run_provider(exporter_for(endpoint, api_key), traced)

    span = Span.objects.get()
    image_sha, audio_sha = hashlib.sha256(image).hexdigest(), hashlib.sha256(audio).hexdigest()
    stored_body = json.loads(span.attributes["http.response.body"])
    assert stored_body["choices"][0]["message"]["content"] == blob_uri(image_sha)
    assert span.attributes["gen_ai.output.audio"] == blob_uri(audio_sha)
    blobs = {blob.sha256: blob for blob in Blob.objects.all()}
    assert (blobs[image_sha].mime_type, blobs[audio_sha].mime_type) == ("image/png", "audio/wav")
    home = settings.ALCHEMY_HOME / "blobs"
    assert (home / blobs[image_sha].storage_key).read_bytes() == image
    assert (home / blobs[audio_sha].storage_key).read_bytes() == audio
    assert sorted(span.blob_references.values_list("location", "blob_id", "kind")) == [
        ("attributes.gen_ai.output.audio", audio_sha, "audio"),
        ("attributes.http.response.body", image_sha, "image"),
    ]


def test_a_providers_spans_under_the_evaluators_traceparent_join_the_linked_trace(
    endpoint, api_key
):
    evaluation = Eval.objects.create(id="eval-tp:1", created_at=timezone.now())
    result = EvalResult.objects.create(eval=evaluation, test_idx=0, prompt_idx=0)
    run = RunTracing(evaluation.id)
    attributes = {
        "evaluation.id": evaluation.id,
        "test.case.id": "0:0",
        "test.index": 0,
        "prompt.index": 0,
    }
    with (
        run.tracer.start_as_current_span("test case", attributes=attributes),
        run.tracer.start_as_current_span("call provider") as call,
    ):
        headers = traceparent_headers()
        call_span_id = f"{call.get_span_context().span_id:016x}"

    def provider_side(tracer):
        # The provider knows nothing of evals: only the traceparent header it was sent.
        context = TraceContextTextMapPropagator().extract(headers)
        with tracer.start_as_current_span("handle request", context=context):
            pass

    run_provider(exporter_for(endpoint, api_key), provider_side)  # arrives first
    run.finish()  # the evaluator stores its own spans after the result batch

    trace = Trace.objects.get()
    assert (trace.eval_id, trace.result_id, trace.test_case_id) == (evaluation.id, result.pk, "0:0")
    assert trace.name == "test case" and trace.span_count == 3
    assert Span.objects.get(name="handle request").parent_span_id == call_span_id
