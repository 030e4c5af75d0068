"""OTLP/HTTP wire formats: request bodies in, ExportTraceServiceResponse out.

Only encoding lives here (protobuf, OTLP/JSON, gzip/deflate); what is stored is
decided in `tracing.services`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = {PROTOBUF, "application/protobuf"}

_HEX = re.compile(r"^[0-9a-fA-F]*$")
# OTLP/JSON carries ids as hex; protobuf's JSON mapping expects base64 for bytes.
_ID_FIELDS = {
    "traceId": 16,
    "spanId": 8,
    "parentSpanId": 8,
    "trace_id": 16,
    "span_id": 8,
    "parent_span_id": 8,
}


class OtlpError(Exception):
    status = 400


class Malformed(OtlpError):
    status = 400


class UnsupportedMediaType(OtlpError):
    status = 415


class TooLarge(OtlpError):
    status = 413


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return content_type.split(";", 1)[0].strip().lower()


def response_format(content_type: str) -> str:
    kind = media_type(content_type)
    if kind in _PROTOBUF_TYPES:
        return PROTOBUF
    if kind == JSON:
        return JSON
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not supported; send {PROTOBUF} or {JSON}."
    )


def decompress(body: bytes, encoding: str, *, limit: int) -> bytes:
    """Undo Content-Encoding, never inflating past `limit` bytes (gzip bombs)."""
    encoding = encoding.strip().lower()
    if encoding in {"", "identity"}:
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none."
        )
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Malformed(f"The {encoding} body could not be decompressed: {exc}") from None
    if len(data) > limit:
        raise TooLarge(f"The decompressed body is larger than {limit} bytes.")
    if not inflater.eof:
        raise Malformed(f"The {encoding} body is truncated.")
    return data


def parse_request(data: bytes, fmt: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if fmt == PROTOBUF:
        try:
            request.ParseFromString(data)
        except DecodeError as exc:
            raise Malformed(
                f"The protobuf body is not an ExportTraceServiceRequest: {exc}"
            ) from None
        return request
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"The JSON body could not be parsed: {exc}") from None
    if not isinstance(document, dict):
        raise Malformed("The JSON body must be an object with resourceSpans.")
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise Malformed(f"The JSON body is not an ExportTraceServiceRequest: {exc}") from None
    return request


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        size = _ID_FIELDS.get(key)
        if size and isinstance(value, str) and len(value) == size * 2 and _HEX.match(value):
            value = base64.b64encode(bytes.fromhex(value)).decode()
        converted[key] = _hex_ids_to_base64(value)
    return converted


def encode_response(fmt: str, *, rejected: int = 0, message: str = "") -> bytes:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if fmt == JSON:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


def encode_status(fmt: str, *, code: int, message: str) -> bytes:
    """The google.rpc.Status body OTLP/HTTP asks for on failures."""
    status = status_pb2.Status(code=code, message=message)
    if fmt == JSON:
        return json_format.MessageToJson(status, indent=None).encode()
    return status.SerializeToString()


def hex_id(raw: bytes) -> str:
    return binascii.hexlify(raw).decode()


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def key_values(pairs: list[KeyValue]) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}
