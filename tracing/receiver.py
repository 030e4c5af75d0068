"""The OTLP/HTTP receiver: POST /v1/traces (and harmless /v1/metrics, /v1/logs).

A plain Django view, not ninja: OTLP speaks protobuf as well as JSON and answers
in the encoding it was sent. Authenticates itself with an API key
(`Authorization: Bearer …` or `x-api-key`), so it is exempt from CSRF and the
login redirect.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from alchemy_site.api import BUSY_MESSAGE, busy, out_of_space
from alchemy_site.auth import verify_api_key
from alchemy_site.errors import StorageFull
from tracing import otlp, services

logger = logging.getLogger(__name__)

# google.rpc.Code values for the Status body of failures.
_RPC_CODE = {
    HTTPStatus.BAD_REQUEST: 3,  # INVALID_ARGUMENT
    HTTPStatus.UNAUTHORIZED: 16,  # UNAUTHENTICATED
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: 8,  # RESOURCE_EXHAUSTED
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: 3,
    HTTPStatus.TOO_MANY_REQUESTS: 8,
    HTTPStatus.SERVICE_UNAVAILABLE: 14,  # UNAVAILABLE
}


def max_body_bytes() -> int:
    return settings.OTLP_MAX_BODY_BYTES


def _failure(
    fmt: str, status: int, message: str, *, retry_after: int | None = None
) -> HttpResponse:
    response = HttpResponse(
        otlp.encode_status(fmt, code=_RPC_CODE.get(status, 2), message=message),
        content_type=fmt,
        status=status,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _authenticated(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    raw = token if scheme.lower() == "bearer" else request.headers.get("X-API-Key", "")
    return bool(raw.strip()) and verify_api_key(raw.strip()) is not None


def _read_export(request: HttpRequest, fmt: str) -> ExportTraceServiceRequest:
    limit = max_body_bytes()
    too_large = otlp.TooLarge(f"The body is larger than {limit} bytes; send smaller batches.")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise otlp.Malformed("Content-Length is not a number.") from None
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        # DATA_UPLOAD_MAX_MEMORY_SIZE is below OTLP_MAX_BODY_BYTES: still a 413, not
        # the HTML 400 Django would answer, so exporters log why.
        raise too_large from None
    if len(body) > limit:
        raise too_large
    data = otlp.decompress(body, request.headers.get("Content-Encoding", ""), limit=limit)
    return otlp.parse_request(data, fmt)


@csrf_exempt
@require_POST
def export_traces(request: HttpRequest) -> HttpResponse:
    unsupported: otlp.UnsupportedMediaType | None = None
    try:
        fmt = otlp.response_format(request.headers.get("Content-Type", ""))
    except otlp.UnsupportedMediaType as exc:
        fmt, unsupported = otlp.JSON, exc
    if not _authenticated(request):
        return _failure(
            fmt,
            HTTPStatus.UNAUTHORIZED,
            "Send an API key: Authorization: Bearer <key> or x-api-key: <key>.",
        )
    if unsupported is not None:
        return _failure(fmt, unsupported.status, str(unsupported))

    try:
        export = _read_export(request, fmt)
    except otlp.OtlpError as exc:
        return _failure(fmt, exc.status, str(exc))

    count = services.count_spans(export)
    if not services.pending_spans.reserve(count):
        return _failure(
            fmt,
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many spans are waiting to be written; retry later.",
            retry_after=1,
        )
    try:
        outcome = services.ingest_request(request=export)
    except (StorageFull, DatabaseError) as exc:
        if isinstance(exc, StorageFull) or out_of_space(exc):
            # 503 is what OTLP exporters retry; the long wait gives someone time to free
            # space before the SDK gives up on the export.
            logger.error("OTLP export of %d spans refused: %s", count, exc)
            message = (
                "Out of storage space; nothing was stored. Free disk space (or run "
                "`manage.py blobs gc` / `manage.py traces prune`), then retry."
            )
            return _failure(fmt, HTTPStatus.SERVICE_UNAVAILABLE, message, retry_after=30)
        if not isinstance(exc, OperationalError) or not busy(exc):
            raise
        logger.warning("OTLP export of %d spans deferred: %s", count, exc)
        return _failure(
            fmt,
            HTTPStatus.SERVICE_UNAVAILABLE,
            BUSY_MESSAGE,
            retry_after=1,
        )
    finally:
        services.pending_spans.release(count)
    return HttpResponse(
        otlp.encode_response(fmt, rejected=outcome.rejected, message=outcome.error_message),
        content_type=fmt,
    )


@csrf_exempt
@require_POST
def discard_signal(request: HttpRequest) -> HttpResponse:
    """Metrics and logs are not stored; say so politely so SDKs log no errors.

    An empty Export*ServiceResponse encodes to zero bytes in protobuf and `{}` in JSON.
    """
    kind = otlp.media_type(request.headers.get("Content-Type", ""))
    if kind == otlp.JSON:
        return HttpResponse(b"{}", content_type=otlp.JSON)
    return HttpResponse(b"", content_type=otlp.PROTOBUF)
