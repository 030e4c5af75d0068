"""Reads that join traces, spans, evals and results: detail lookups and span trees."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Q

from alchemy_site.errors import NotFound
from evals.models import Eval, EvalResult
from tracing.models import Span, Trace


@dataclass
class SpanNode:
    """A span in its tree, with where it sits on the trace's timeline."""

    span: Span
    depth: int
    offset_ns: int
    children: list[SpanNode] = field(default_factory=list)

    @property
    def offset_ms(self) -> float:
        return self.offset_ns / 1e6


@dataclass(frozen=True)
class WaterfallRow:
    node: SpanNode
    offset_pct: float
    width_pct: float


def resolve_links(traces: Sequence[Trace]) -> None:
    """Point traces at their Eval and EvalResult rows where those exist (in memory only)."""
    eval_ids = {trace.evaluation_id for trace in traces if trace.evaluation_id}
    if not eval_ids:
        return
    known = set(Eval.objects.filter(pk__in=eval_ids).values_list("pk", flat=True))
    wanted = Q()
    for trace in traces:
        if trace.evaluation_id in known:
            trace.eval_id = trace.evaluation_id
            if trace.test_idx is not None and trace.prompt_idx is not None:
                wanted |= Q(
                    eval_id=trace.evaluation_id,
                    test_idx=trace.test_idx,
                    prompt_idx=trace.prompt_idx,
                )
    if not wanted:
        return
    results = {
        (row["eval_id"], row["test_idx"], row["prompt_idx"]): row["pk"]
        for row in EvalResult.objects.filter(wanted).values(
            "pk", "eval_id", "test_idx", "prompt_idx"
        )
    }
    for trace in traces:
        trace.result_id = results.get((trace.eval_id, trace.test_idx, trace.prompt_idx))


def get_trace(trace_id: str) -> Trace:
    """The trace with this id, its eval and result linked even if they arrived later."""
    trace = Trace.objects.filter(trace_id=trace_id.strip().lower()).first()
    if trace is None:
        raise NotFound(f"No trace {trace_id!r}.", trace_id=trace_id)
    if trace.evaluation_id and (trace.eval_id is None or trace.result_id is None):
        resolve_links([trace])
    return trace


def span_tree(trace: Trace, spans: Sequence[Span]) -> list[SpanNode]:
    """Roots (spans whose parent is absent) with children nested, each level by start time."""
    origin = trace.start_time_unix_nano or (spans[0].start_time_unix_nano if spans else 0)
    ordered = sorted(spans, key=lambda span: (span.start_time_unix_nano, span.pk or 0))
    ids = {span.span_id for span in ordered}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in ordered:
        if (
            span.parent_span_id
            and span.parent_span_id in ids
            and span.parent_span_id != span.span_id
        ):
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)

    seen: set[str] = set()

    def build(span: Span, depth: int) -> SpanNode:
        seen.add(span.span_id)
        node = SpanNode(span=span, depth=depth, offset_ns=span.start_time_unix_nano - origin)
        node.children = [
            build(child, depth + 1)
            for child in children.get(span.span_id, [])
            if child.span_id not in seen  # a parent cycle cannot recurse forever
        ]
        return node

    return [build(root, 0) for root in roots]


def flatten(nodes: Sequence[SpanNode]) -> list[SpanNode]:
    flat: list[SpanNode] = []
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        flat.append(node)
        stack.extend(reversed(node.children))
    return flat


def waterfall(trace: Trace, spans: Sequence[Span]) -> list[WaterfallRow]:
    """Depth-first rows with each bar's offset and width as % of the trace's span of time."""
    nodes = flatten(span_tree(trace, spans))
    total = trace.duration_ns or max(
        (node.offset_ns + node.span.duration_ns for node in nodes), default=0
    )
    rows = []
    for node in nodes:
        if total <= 0:
            rows.append(WaterfallRow(node, 0.0, 100.0))
            continue
        offset = min(max(node.offset_ns / total * 100, 0.0), 100.0)
        width = min(max(node.span.duration_ns / total * 100, 0.3), 100.0 - offset)
        rows.append(WaterfallRow(node, round(offset, 3), round(max(width, 0.3), 3)))
    return rows
