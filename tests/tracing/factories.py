"""Traces and spans built through the real write path (ingest_request)."""

from __future__ import annotations

import base64
import io
import itertools
import random
import struct
import wave
import zlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as OtlpStatus

from tracing.models import Trace
from tracing.services import ingest_request

BASE_NS = 1_700_000_000_000_000_000
_ids = itertools.count(1)


def otlp_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def otlp_span(
    trace_id: str,
    span_id: str,
    name: str,
    *,
    parent: str = "",
    start_ms: float = 0,
    duration_ms: float = 1,
    status: int = 0,
    attributes: dict | None = None,
) -> OtlpSpan:
    start = BASE_NS + int(start_ms * 1_000_000)
    return OtlpSpan(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1_000_000),
        status=OtlpStatus(code=status),
        attributes=[KeyValue(key=k, value=otlp_value(v)) for k, v in (attributes or {}).items()],
    )


def export_of(*spans: OtlpSpan) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )


def make_trace(
    *,
    name: str = "root",
    eval_id: str = "",
    test_case_id: str = "",
    duration_ms: float = 10,
    status: int = 0,
    children: int = 1,
) -> Trace:
    """A root span and `children` child spans, stored through ingest_request."""
    n = next(_ids)
    trace_id = f"{n:032x}"
    root_id = f"{n:08x}{0:08x}"
    attributes = {"evaluation.id": eval_id, "test.case.id": test_case_id} if eval_id else {}
    spans = [
        otlp_span(
            trace_id, root_id, name, duration_ms=duration_ms, status=status, attributes=attributes
        )
    ]
    spans += [
        otlp_span(
            trace_id,
            f"{n:08x}{i:08x}",
            f"{name}.child{i}",
            parent=root_id,
            start_ms=i,
            duration_ms=duration_ms / (children + 1),
        )
        for i in range(1, children + 1)
    ]
    ingest_request(request=export_of(*spans))
    return Trace.objects.get(trace_id=trace_id)


def png_bytes(*, seed: int = 0, side: int = 24) -> bytes:
    """A real RGB PNG of noise: it barely compresses, so it is about 3 × side² bytes."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def wav_bytes(*, seed: int = 0, frames: int = 2000) -> bytes:
    """A real 8 kHz mono 16-bit WAV of noise, 44 + 2 × frames bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(random.Random(seed).randbytes(frames * 2))
    return buffer.getvalue()


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def data_url(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(content)}"
