"""Reads that join several models: listing pages, prompt detail, lineage, related evals."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery

from alchemy_site.errors import Invalid
from prompts.filters import SORTS, filter_prompts
from prompts.models import Prompt
from prompts.services import get_prompt

KEYSET_SORTS = {"recent": False, "oldest": True}  # sort -> ascending?


def _encode(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API issued; start again without it.") from None
    if not isinstance(payload, dict):
        raise Invalid("cursor is not one this API issued; start again without it.")
    return payload


def list_prompts(
    *, filters: dict[str, Any], sort: str = "recent", limit: int = 50, cursor: str | None = None
) -> tuple[list[Prompt], str | None]:
    """One page of filtered prompts and the cursor of the next page.

    Time-ordered listings page by keyset (created_at, id), so deep pages cost the
    same as the first; other orders page by offset inside the cursor.
    """
    if sort not in SORTS:
        raise Invalid(f"sort must be one of: {', '.join(SORTS)}.")
    queryset = filter_prompts(filters).order_by(*SORTS[sort]).with_related()
    state = _decode(cursor) if cursor else {}
    offset = 0
    if sort in KEYSET_SORTS and "after" in state:
        created, pk = state["after"]
        if KEYSET_SORTS[sort]:
            after = Q(created_at__gt=created) | Q(created_at=created, id__gt=pk)
        else:
            after = Q(created_at__lt=created) | Q(created_at=created, id__lt=pk)
        queryset = queryset.filter(after)
    elif "offset" in state:
        offset = int(state["offset"])
    rows = list(queryset[offset : offset + limit + 1])
    items = rows[:limit]
    if len(rows) <= limit:
        return items, None
    if sort in KEYSET_SORTS:
        last = items[-1]
        return items, _encode({"after": [last.created_at.isoformat(), str(last.pk)]})
    return items, _encode({"offset": offset + limit})


def prompt_detail(prompt_id: Any) -> Prompt:
    """A prompt with metadata, metrics, history and feedback counts (five queries)."""
    prompt = get_prompt(prompt_id)
    queryset = Prompt.objects.filter(pk=prompt.pk).select_related("parent", "variant_of")
    prompt = queryset.prefetch_related("tags", "metadata", "metrics", "history").get()
    by_rating = dict(
        prompt.feedback.order_by()
        .values_list("rating")
        .annotate(n=Count("id"))
        .values_list("rating", "n")
    )
    total = sum(by_rating.values())
    mean = round(sum(r * n for r, n in by_rating.items()) / total, 4) if total else None
    prompt.feedback_counts = {
        "total": total,
        "mean_rating": mean,
        "by_rating": {r: by_rating.get(r, 0) for r in range(1, 6)},
    }
    return prompt


@dataclass
class Node:
    prompt: Prompt
    children: list[Node] = field(default_factory=list)

    # The API schema reads these attributes off the node.
    @property
    def id(self):
        return self.prompt.pk

    @property
    def content(self) -> str:
        return self.prompt.content

    @property
    def phase(self) -> str:
        return self.prompt.phase

    @property
    def created_at(self):
        return self.prompt.created_at


MAX_DEPTH = 100
LINEAGE_FIELDS = ("id", "content", "phase", "created_at", "parent_id")


def lineage(prompt_id: Any) -> dict:
    """Ancestors (root first) and the descendant tree; one query per generation."""
    prompt = get_prompt(prompt_id)
    ancestors: list[Node] = []
    seen = {prompt.pk}
    parent_id = prompt.parent_id
    while parent_id is not None and parent_id not in seen and len(ancestors) < MAX_DEPTH:
        parent = Prompt.objects.only(*LINEAGE_FIELDS).get(pk=parent_id)
        ancestors.append(Node(parent))
        seen.add(parent.pk)
        parent_id = parent.parent_id
    ancestors.reverse()

    root = Node(prompt)
    frontier = {prompt.pk: root}
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        children = Prompt.objects.filter(parent_id__in=list(frontier)).only(*LINEAGE_FIELDS)
        next_frontier = {}
        for child in children.order_by("created_at", "id"):
            if child.pk in seen:
                continue
            seen.add(child.pk)
            node = Node(child)
            frontier[child.parent_id].children.append(node)
            next_frontier[child.pk] = node
        frontier = next_frontier
    return {"prompt_id": prompt.pk, "ancestors": ancestors, "descendants": root.children}


def evals_for_hash(content_hash: str, *, limit: int = 50) -> list[dict] | None:
    """Evals that tested this exact text, with pass rates; None when the evals app is absent.

    One query: eval prompts joined to their eval, aggregates read by subquery.
    """
    try:
        from django.apps import apps

        eval_prompt = apps.get_model("evals", "EvalPrompt")
        stats = apps.get_model("evals", "EvalPromptStats")
    except (ImportError, LookupError):
        return None
    same_prompt = stats.objects.filter(
        eval_id=OuterRef("eval_id"), prompt_idx=OuterRef("prompt_idx")
    )
    counts = {
        name: Subquery(same_prompt.values(name)[:1])
        for name in ("pass_count", "fail_count", "error_count")
    }
    rows = (
        eval_prompt.objects.filter(prompt_text__content_hash=content_hash)
        .annotate(**counts)
        .values(
            "eval_id",
            "eval__description",
            "eval__created_at",
            "provider",
            "label",
            "prompt_idx",
            *counts,
        )
        .order_by("-eval__created_at", "prompt_idx")[:limit]
    )
    result = []
    for row in rows:
        passes = row["pass_count"] or 0
        total = passes + (row["fail_count"] or 0) + (row["error_count"] or 0)
        result.append(
            {
                "eval_id": row["eval_id"],
                "description": row["eval__description"],
                "created_at": row["eval__created_at"],
                "provider": row["provider"],
                "label": row["label"],
                "prompt_idx": row["prompt_idx"],
                "passes": passes,
                "total": total,
                "pass_rate": round(passes / total, 4) if total else None,
            }
        )
    return result
