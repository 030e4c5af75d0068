"""The tracing write path: OTLP requests in, redacted spans stored once each.

`ingest_request` is the one function that writes spans. The HTTP receiver calls
it, and so does the evaluator's in-process exporter (through `ingest_spans`), so
`manage.py eval` stores its own spans without a server.

Writes are synchronous and batched: one transaction per export request, one
INSERT … ON CONFLICT DO NOTHING per 500 spans, one summary refresh per batch.
SDKs already batch (BatchSpanProcessor sends up to 512 spans per request), so a
request costs a handful of statements. An in-process queue with a drainer thread
would not raise throughput (SQLite has one writer either way), would acknowledge
spans a crash could still lose, and would need a second connection that deadlocks
against any caller already inside a transaction. What a queue would give —
back-pressure — comes from `PendingSpans`: the receiver answers 429 with
Retry-After when too many spans are already waiting for the write lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, Max, Min, OuterRef, Q, Subquery, Value, When
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from alchemy_site.sqlite import checkpoint_soon
from blobs import services as blobs
from tracing import redaction
from tracing.models import Span, StatusCode, Trace
from tracing.otlp import hex_id, key_values
from tracing.selectors import resolve_links

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

# Span (or resource) attributes that tie a trace to an eval and a result. The first
# two are promptfoo's; the indices let a trace find its EvalResult row.
EVAL_ID_KEYS = ("evaluation.id", "promptfoo.evaluation.id")
TEST_CASE_KEYS = ("test.case.id", "promptfoo.test.case.id")
TEST_IDX_KEYS = ("test.index", "promptfoo.test.index")
PROMPT_IDX_KEYS = ("prompt.index", "promptfoo.prompt.index")

MAX_NANOS = 2**63 - 1  # BigIntegerField; OTLP's fixed64 could in theory be larger
WRITE_BATCH = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    rejected: int = 0
    error_message: str = ""


@dataclass
class _Link:
    eval_id: str = ""
    test_case_id: str = ""
    test_idx: int | None = None
    prompt_idx: int | None = None

    def absorb(self, attributes: dict[str, Any]) -> None:
        self.eval_id = self.eval_id or _first_str(attributes, EVAL_ID_KEYS)
        self.test_case_id = self.test_case_id or _first_str(attributes, TEST_CASE_KEYS)
        if self.test_idx is None:
            self.test_idx = _first_int(attributes, TEST_IDX_KEYS)
        if self.prompt_idx is None:
            self.prompt_idx = _first_int(attributes, PROMPT_IDX_KEYS)


@dataclass
class _Decoded:
    spans: list[Span] = field(default_factory=list)
    links: dict[str, _Link] = field(default_factory=dict)  # by trace id
    rejected: int = 0
    errors: list[str] = field(default_factory=list)


def _first_str(attributes: dict[str, Any], keys: Sequence[str]) -> str:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)[:255]
    return ""


def _first_int(attributes: dict[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def nanos_to_datetime(nanos: int) -> datetime:
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C `traceparent`, or None if it is not one."""
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "ff" or set(match.group(2)) == {"0"}:
        return None
    return match.group(2), match.group(3)


# --- Back-pressure ---------------------------------------------------------------


class PendingSpans:
    """Counts spans accepted by the receiver but not yet committed, process-wide."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def limit(self) -> int:
        return settings.OTLP_QUEUE_MAX_SPANS

    def reserve(self, n: int) -> bool:
        with self._lock:
            # One request is always let through alone, however large, or it could never land.
            if self.count and self.count + n > self.limit():
                return False
            self.count += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.count = max(self.count - n, 0)


pending_spans = PendingSpans()


# --- Ingestion -------------------------------------------------------------------


def ingest_spans(*, spans: Sequence[ReadableSpan]) -> IngestOutcome:
    """Store OpenTelemetry SDK spans in-process (the evaluator's exporter calls this)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    if not spans:
        return IngestOutcome(accepted=0)
    return ingest_request(request=encode_spans(spans))


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)


def ingest_request(*, request: ExportTraceServiceRequest) -> IngestOutcome:
    """Store every valid span of `request` once; invalid ones are counted as rejected.

    Replaying the same request stores nothing new: spans are unique on
    (trace, span_id) and inserted with ON CONFLICT DO NOTHING.

    Attributes are redacted, then their media (base64 images and audio) moves to
    blob storage, then what is left is truncated: the blob URI survives truncation.
    Blob files and rows are written before the transaction (file I/O should not hold
    SQLite's write lock; GC leaves young unreferenced blobs alone), the spans' uses
    of them inside it.
    """
    decoded = _decode(request)
    if decoded.spans:
        media = blobs.externalize_span_media(spans=[_media_fields(s) for s in decoded.spans])
        for span in decoded.spans:
            _shorten(span)
        with transaction.atomic():
            traces = _upsert_traces(decoded.links)
            for span in decoded.spans:
                span.trace_id = traces[span.trace_id].pk
            _insert_spans(decoded.spans, media)
            _refresh_summaries(list(traces.values()))
            transaction.on_commit(lambda: checkpoint_soon(connection))
    message = "; ".join(decoded.errors[:5])
    return IngestOutcome(
        accepted=len(decoded.spans), rejected=decoded.rejected, error_message=message
    )


def _decode(request: ExportTraceServiceRequest) -> _Decoded:
    decoded = _Decoded()
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            shared = {**resource, **key_values(scope.attributes)}
            if scope.name:
                shared["otel.scope.name"] = scope.name
            if scope.version:
                shared["otel.scope.version"] = scope.version
            cleaned_shared = redaction.clean_attributes(shared)
            for span in scope_spans.spans:
                problem = _problem(span)
                if problem:
                    decoded.rejected += 1
                    decoded.errors.append(f"span {span.name!r}: {problem}")
                    continue
                trace_id = hex_id(span.trace_id)
                attributes = key_values(span.attributes)
                link = decoded.links.setdefault(trace_id, _Link())
                link.absorb(attributes)
                link.absorb(shared)
                decoded.spans.append(_span_row(span, trace_id, attributes, cleaned_shared))
    return decoded


def _problem(span) -> str:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "trace_id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "span_id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id must be empty or 8 bytes"
    if span.start_time_unix_nano > MAX_NANOS or span.end_time_unix_nano > MAX_NANOS:
        return "times must be nanoseconds since the epoch below 2**63"
    return ""


def _span_row(span, trace_id: str, attributes: dict, resource_attributes: dict) -> Span:
    # Holds the hex trace id in trace_id until the Trace rows exist. Attributes are
    # redacted here and shortened by `_shorten` once their media is in blob storage.
    return Span(
        trace_id=trace_id,
        span_id=hex_id(span.span_id),
        parent_span_id=hex_id(span.parent_span_id) if any(span.parent_span_id) else "",
        name=redaction.truncate(span.name, 1000),
        kind=span.kind,
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        started_at=nanos_to_datetime(span.start_time_unix_nano),
        status_code=span.status.code,
        status_message=redaction.truncate(span.status.message, redaction.body_limit()),
        attributes=redaction.redact_attributes(attributes),
        resource_attributes=resource_attributes,
        events=[
            {
                "name": redaction.truncate(event.name, 1000),
                "time_unix_nano": event.time_unix_nano,
                "attributes": redaction.redact_attributes(key_values(event.attributes)),
            }
            for event in span.events
        ],
        links=[
            {
                "trace_id": hex_id(link.trace_id),
                "span_id": hex_id(link.span_id),
                "attributes": redaction.redact_attributes(key_values(link.attributes)),
            }
            for link in span.links
        ],
    )


def _media_fields(span: Span) -> dict[str, Any]:
    # The span's own containers: media is replaced in them in place.
    return {"attributes": span.attributes, "events": span.events, "links": span.links}


def _shorten(span: Span) -> None:
    span.attributes = redaction.clean_attributes(span.attributes)
    for item in (*span.events, *span.links):
        item["attributes"] = redaction.clean_attributes(item["attributes"])


def _insert_spans(spans: list[Span], media: list[blobs.MediaUse]) -> None:
    """Insert the spans not stored yet and record which blobs the new ones use.

    A replayed span is not inserted again, and its uses were recorded when it was.
    """
    with_media = {_key(spans[use.item]) for use in media}
    stored_before = _span_pks(with_media)
    Span.objects.bulk_create(spans, batch_size=WRITE_BATCH, ignore_conflicts=True)
    # bulk_create with ignore_conflicts sets no pks: read the new spans' back.
    inserted = _span_pks(with_media - stored_before.keys())
    blobs.save_span_references(
        (inserted[_key(spans[use.item])], use) for use in media if _key(spans[use.item]) in inserted
    )


def _key(span: Span) -> tuple[int, str]:
    return span.trace_id, span.span_id


def _span_pks(keys: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    for chunk in _chunks(sorted(keys)):
        rows = Span.objects.filter(
            trace_id__in={trace for trace, _ in chunk}, span_id__in={span for _, span in chunk}
        ).values_list("trace_id", "span_id", "pk")
        found.update(((trace, span), pk) for trace, span, pk in rows if (trace, span) in keys)
    return found


def _chunks(items: Sequence, size: int = WRITE_BATCH) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _upsert_traces(links: dict[str, _Link]) -> dict[str, Trace]:
    """Trace rows for these ids, created if new and linked if the batch says more."""
    ids = list(links)
    existing = _traces_by_id(ids)
    new = [
        Trace(
            trace_id=trace_id,
            evaluation_id=links[trace_id].eval_id,
            test_case_id=links[trace_id].test_case_id,
            test_idx=links[trace_id].test_idx,
            prompt_idx=links[trace_id].prompt_idx,
        )
        for trace_id in ids
        if trace_id not in existing
    ]
    if new:
        # ignore_conflicts: another writer may have created the same trace meanwhile.
        Trace.objects.bulk_create(new, batch_size=WRITE_BATCH, ignore_conflicts=True)
        existing.update(_traces_by_id([trace.trace_id for trace in new]))
    for trace_id, trace in existing.items():
        link = links[trace_id]
        trace.evaluation_id = trace.evaluation_id or link.eval_id
        trace.test_case_id = trace.test_case_id or link.test_case_id
        trace.test_idx = trace.test_idx if trace.test_idx is not None else link.test_idx
        trace.prompt_idx = trace.prompt_idx if trace.prompt_idx is not None else link.prompt_idx
    resolve_links([trace for trace in existing.values() if trace.result_id is None])
    return existing


def _traces_by_id(trace_ids: Sequence[str]) -> dict[str, Trace]:
    found: dict[str, Trace] = {}
    for chunk in _chunks(list(trace_ids)):
        found.update((trace.trace_id, trace) for trace in Trace.objects.filter(trace_id__in=chunk))
    return found


def _refresh_summaries(traces: Sequence[Trace]) -> None:
    pks = [trace.pk for trace in traces]
    stats = {
        row["trace_id"]: row
        for row in Span.objects.filter(trace_id__in=pks)
        .values("trace_id")
        .annotate(
            start=Min("start_time_unix_nano"),
            end=Max("end_time_unix_nano"),
            spans=Count("id"),
            errors=Count("id", filter=Q(status_code=StatusCode.ERROR)),
            status=Max("status_code"),
        )
    }
    # The trace is named after its earliest root span; if the root has not arrived
    # (the evaluator's own span, say), after its earliest span.
    is_child = Case(When(parent_span_id="", then=Value(0)), default=Value(1))
    first = Span.objects.filter(trace=OuterRef("pk")).order_by(is_child, "start_time_unix_nano")
    roots = dict(
        Trace.objects.filter(pk__in=pks)
        .annotate(root=Subquery(first.values("name")[:1]))
        .values_list("pk", "root")
    )
    now = timezone.now()
    for trace in traces:
        trace.updated_at = now  # bulk_update skips auto_now
        row = stats.get(trace.pk)
        if row is None:
            continue
        trace.start_time_unix_nano = row["start"]
        trace.end_time_unix_nano = row["end"]
        trace.duration_ns = max(row["end"] - row["start"], 0)
        trace.started_at = nanos_to_datetime(row["start"])
        trace.span_count = row["spans"]
        trace.error_count = row["errors"]
        trace.status_code = row["status"]
        trace.name = roots.get(trace.pk) or trace.name
    Trace.objects.bulk_update(
        traces,
        [
            "evaluation_id",
            "eval",
            "test_case_id",
            "test_idx",
            "prompt_idx",
            "result",
            "name",
            "start_time_unix_nano",
            "end_time_unix_nano",
            "duration_ns",
            "started_at",
            "span_count",
            "error_count",
            "status_code",
            "updated_at",
        ],
        batch_size=WRITE_BATCH,
    )


# --- Links from the evaluator ------------------------------------------------------


def register_trace(
    *,
    trace_id: str,
    eval_id: str,
    test_case_id: str = "",
    test_idx: int | None = None,
    prompt_idx: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Trace:
    """Record which eval and test a trace belongs to, before or after its spans arrive.

    For a writer that hands out a `traceparent` without exporting spans of its own: spans
    sent later with that trace id are then linked without carrying any attributes.
    (`manage.py eval` needs no call: its own span in the trace carries the eval's
    attributes, which link the whole trace.)
    """
    trace_id = trace_id.lower()
    with transaction.atomic():
        trace, _ = Trace.objects.get_or_create(trace_id=trace_id)
        trace.evaluation_id = eval_id
        trace.test_case_id = test_case_id[:255]
        trace.test_idx = test_idx
        trace.prompt_idx = prompt_idx
        if metadata:
            trace.metadata = {**trace.metadata, **metadata}
        trace.eval_id = None
        trace.result_id = None
        resolve_links([trace])
        trace.save()
    return trace


def link_traces(*, eval_id: str) -> int:
    """Link traces that arrived before their eval (or results) to those rows now.

    Safe to call after every result batch; returns how many traces changed.
    """
    with transaction.atomic():
        traces = list(Trace.objects.for_eval(eval_id).filter(Q(eval=None) | Q(result=None)))
        before = {trace.pk: (trace.eval_id, trace.result_id) for trace in traces}
        resolve_links(traces)
        changed = [t for t in traces if (t.eval_id, t.result_id) != before[t.pk]]
        Trace.objects.bulk_update(changed, ["eval", "result"], batch_size=WRITE_BATCH)
    return len(changed)


# --- Retention ---------------------------------------------------------------------


def prune_traces(*, older_than: timedelta, dry_run: bool = False) -> tuple[int, int]:
    """Delete traces stored more than `older_than` ago; returns (traces, spans).

    Their spans' blob references go too; `blobs gc` then frees blobs nothing else uses.
    """
    cutoff = timezone.now() - older_than
    old = Trace.objects.filter(created_at__lt=cutoff)
    pks = list(old.values_list("pk", flat=True))
    spans = 0
    for chunk in _chunks(pks):
        spans += Span.objects.filter(trace_id__in=chunk).count()
    if dry_run:
        return len(pks), spans
    for chunk in _chunks(pks):
        with transaction.atomic():
            # pk only: to cascade to blob references the collector loads the spans,
            # and their attributes are most of the database.
            Span.objects.filter(trace_id__in=chunk).only("pk").delete()
            Trace.objects.filter(pk__in=chunk).delete()
    return len(pks), spans
