"""Text, semantic and hybrid search over prompts. Filters always apply in SQL first.

- text: every query word must appear in content, original_input or a tag; ranked by
  how well the whole query matched (content > original input > words only), then
  relevance, then recency.
- semantic: cosine similarity between the query vector and the stored vectors of one
  embedding model, over the rows the filters allow.
- hybrid: 0.7 × cosine + 0.3 × text match level, so exact wording breaks ties.
With `rank="learned"`, scores are weighted by what feedback taught about the
prompt's persona, phase, provider and model (see `prompts.learning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db.models import Case, IntegerField, Value, When

from alchemy_site.errors import Invalid
from prompts.embeddings import get_embedder, is_local_embedder, parse_vector, vector_index
from prompts.filters import filter_prompts, text_match
from prompts.learning import COLUMN_TRAITS, with_learned_score
from prompts.models import Prompt

Mode = Literal["text", "semantic", "hybrid"]
Rank = Literal["default", "learned"]
SEMANTIC_WEIGHT = 0.7
MAX_LIMIT = 500
LEARNED_POOL = 10


@dataclass
class Hit:
    prompt: Prompt
    score: float
    match: str  # "text", "semantic" or "hybrid"


def _match_level(query: str):
    phrase = query.strip()
    return Case(
        When(content__icontains=phrase, then=Value(3)),
        When(original_input__icontains=phrase, then=Value(2)),
        default=Value(1),
        output_field=IntegerField(),
    )


def _learned_weight(prompt: Prompt) -> float:
    # learned_score sums one confidence per column trait; its mean is 0–1.
    return 0.5 + getattr(prompt, "learned_score", 0.0) / len(COLUMN_TRAITS)


def query_vector(
    *, query: str, vector: list[float] | None, embedding_model: str | None
) -> tuple[str, np.ndarray]:
    """The space to search and the query's vector in it."""
    if vector is not None:
        if not embedding_model:
            raise Invalid("A query vector needs embedding_model, the model that produced it.")
        return embedding_model, parse_vector(vector, model=embedding_model)
    if embedding_model and not is_local_embedder(embedding_model):
        raise Invalid(
            f"Alchemy cannot embed text with {embedding_model!r}; send the query's vector "
            "from that model as `vector`, or search the default embedder's space."
        )
    if not query.strip():
        raise Invalid("Semantic search needs a query or a vector.")
    embedder = get_embedder(embedding_model)
    return embedder.name, embedder.embed([query])[0]


def search(
    *,
    query: str = "",
    mode: Mode = "text",
    limit: int = 20,
    filters: dict[str, Any] | None = None,
    vector: list[float] | None = None,
    embedding_model: str | None = None,
    rank: Rank = "default",
) -> list[Hit]:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.")
    if mode not in ("text", "semantic", "hybrid"):
        raise Invalid("mode must be one of: text, semantic, hybrid.")
    base = filter_prompts(filters)
    if rank == "learned":
        base = with_learned_score(base)
    if mode == "text":
        return _text_search(base, query=query, limit=limit, rank=rank)
    model, qvec = query_vector(query=query, vector=vector, embedding_model=embedding_model)
    candidates = list(base.filter(embedding_model=model).values_list("id", flat=True))
    hybrid = mode == "hybrid" and query.strip()
    # Text levels can lift any candidate, so hybrid scores them all; learned weights
    # (0.5–1.5×) re-rank a wider pool than the page.
    keep = limit * LEARNED_POOL if rank == "learned" else limit
    pool = len(candidates) if hybrid else keep
    scored = dict(
        vector_index.top_k(model=model, query=qvec, candidate_ids=candidates, limit=max(pool, 1))
    )
    if hybrid:
        levels = dict(
            base.filter(embedding_model=model)
            .filter(text_match(query))
            .annotate(level=_match_level(query))
            .values_list("id", "level")
        )
        scored = {
            pk: SEMANTIC_WEIGHT * cos + (1 - SEMANTIC_WEIGHT) * levels.get(pk, 0) / 3
            for pk, cos in scored.items()
        }
    scored = dict(sorted(scored.items(), key=lambda kv: -kv[1])[:keep])
    prompts = base.filter(pk__in=list(scored)).prefetch_related("tags") if scored else []
    hits = [Hit(p, scored[p.pk], mode) for p in prompts]
    if rank == "learned":
        for hit in hits:
            hit.score *= _learned_weight(hit.prompt)
    hits.sort(key=lambda h: (-h.score, -h.prompt.relevance_score, str(h.prompt.pk)))
    return hits[:limit]


def _text_search(base, *, query: str, limit: int, rank: Rank) -> list[Hit]:
    if not query.strip():
        raise Invalid("Text search needs a query.")
    order = ["-level"]
    if rank == "learned":
        order.append("-learned_score")
    order += ["-relevance_score", "-created_at", "-id"]
    rows = (
        base.filter(text_match(query))
        .annotate(level=_match_level(query))
        .order_by(*order)
        .prefetch_related("tags")[:limit]
    )
    return [Hit(p, round(p.level / 3, 6), "text") for p in rows]
