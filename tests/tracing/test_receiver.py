"""/v1/traces error paths and encodings, through the test client."""

from __future__ import annotations

import gzip
import json
from http import HTTPStatus
from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracing import services
from tracing.models import Span

pytestmark = pytest.mark.django_db

PROTOBUF = "application/x-protobuf"


def two_spans(tracer):
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass


@pytest.fixture
def payload(record_spans) -> bytes:
    return encode_spans(record_spans(two_spans)).SerializeToString()


def post(client, body: bytes, *, content_type: str = PROTOBUF, **headers):
    return client.post(reverse("otlp-traces"), body, content_type=content_type, headers=headers)


def test_a_protobuf_export_is_answered_with_an_empty_protobuf_response(api_client, payload):
    response = post(api_client, payload)

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == PROTOBUF
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    assert Span.objects.count() == 2


def test_an_x_api_key_header_authenticates_too(client, api_key, payload):
    response = post(client, payload, **{"X-API-Key": api_key})

    assert response.status_code == HTTPStatus.OK


def test_it_answers_401_without_an_api_key(client, payload):
    response = post(client, payload)

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert "API key" in status_pb2.Status.FromString(response.content).message
    assert not Span.objects.exists()


def test_it_answers_401_for_a_revoked_or_wrong_key(client, payload):
    response = post(client, payload, Authorization="Bearer alc_nope_nope")

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_it_answers_415_for_an_unknown_content_type(api_client, payload):
    response = post(api_client, payload, content_type="text/plain")

    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert "application/x-protobuf" in response.json()["message"]


def test_it_answers_415_for_an_unknown_content_encoding(api_client, payload):
    response = post(api_client, payload, **{"Content-Encoding": "br"})

    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff not protobuf", PROTOBUF),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "application/json",
        ),
    ],
)
def test_it_answers_400_for_a_malformed_body(api_client, body, content_type):
    response = post(api_client, body, content_type=content_type)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Span.objects.exists()


def test_it_answers_400_for_a_corrupt_gzip_body(api_client):
    response = post(api_client, b"not gzip at all", **{"Content-Encoding": "gzip"})

    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_it_answers_413_for_a_body_over_the_limit(api_client, payload, settings):
    settings.OTLP_MAX_BODY_BYTES = len(payload) - 1

    response = post(api_client, payload)

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert not Span.objects.exists()


def test_it_answers_413_when_django_would_refuse_the_body_first(api_client, payload, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(payload) - 1

    response = post(api_client, payload)

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "larger than" in status_pb2.Status.FromString(response.content).message


def test_it_answers_400_for_a_content_length_that_is_not_a_number(api_client, payload):
    response = post(api_client, payload, **{"Content-Length": "lots"})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert status_pb2.Status.FromString(response.content).message == (
        "Content-Length is not a number."
    )


def test_it_answers_413_for_a_gzip_bomb_without_inflating_it_all(api_client, settings):
    settings.OTLP_MAX_BODY_BYTES = 64 * 1024
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < settings.OTLP_MAX_BODY_BYTES

    response = post(api_client, bomb, **{"Content-Encoding": "gzip"})

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_json_requests_get_json_answers_with_partial_success_for_rejected_spans(api_client):
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "good",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            },
                            {
                                "traceId": "00000000000000000000000000000000",
                                "spanId": "b7ad6b7169203332",
                                "name": "zero-trace",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            },
                        ]
                    }
                ]
            }
        ]
    }

    response = post(
        api_client, json.dumps(body).encode(), content_type="application/json; charset=utf-8"
    )

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"
    answer = response.json()["partialSuccess"]
    assert answer["rejectedSpans"] == "1"
    assert "zero-trace" in answer["errorMessage"]
    assert list(Span.objects.values_list("name", flat=True)) == ["good"]


def test_protobuf_requests_get_protobuf_partial_success_for_rejected_spans(api_client, payload):
    export = ExportTraceServiceRequest.FromString(payload)
    export.resource_spans[0].scope_spans[0].spans[0].span_id = b"short"

    response = post(
        api_client, export.SerializeToString(), content_type=f"{PROTOBUF}; charset=utf-8"
    )

    assert response.status_code == HTTPStatus.OK
    answer = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert answer.rejected_spans == 1
    assert "span_id must be 8 bytes" in answer.error_message
    assert Span.objects.count() == 1


def test_it_answers_429_with_retry_after_when_too_many_spans_are_pending(
    api_client, payload, settings
):
    settings.OTLP_QUEUE_MAX_SPANS = 3
    assert services.pending_spans.reserve(2)
    try:
        response = post(api_client, payload)
    finally:
        services.pending_spans.release(2)

    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response["Retry-After"] == "1"
    assert services.pending_spans.count == 0
    assert not Span.objects.exists()


def test_a_single_request_larger_than_the_queue_is_still_let_through(api_client, payload, settings):
    settings.OTLP_QUEUE_MAX_SPANS = 1

    response = post(api_client, payload)

    assert response.status_code == HTTPStatus.OK
    assert services.pending_spans.count == 0


def test_it_answers_503_with_retry_after_when_the_database_is_locked(api_client, payload):
    locked = OperationalError("database is locked")
    with mock.patch.object(services, "ingest_request", side_effect=locked):
        response = post(api_client, payload)

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "1"
    assert services.pending_spans.count == 0


def test_get_is_not_allowed(api_client):
    response = api_client.get(reverse("otlp-traces"))

    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED


@pytest.mark.parametrize("name", ["otlp-metrics", "otlp-logs"])
def test_metrics_and_logs_are_acknowledged_and_dropped(client, name):
    protobuf = client.post(reverse(name), b"\x0a\x00", content_type=PROTOBUF)
    as_json = client.post(reverse(name), b"{}", content_type="application/json")

    assert protobuf.status_code == HTTPStatus.OK and protobuf.content == b""
    assert as_json.status_code == HTTPStatus.OK and as_json.json() == {}
