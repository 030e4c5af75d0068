"""Text, semantic and hybrid search over prompts. Filters always apply in SQL first.

- text: every query word must appear in content, original_input or a tag; ranked by
  how well the whole query matched (content > original input > words only), then
  relevance, then recency.
- semantic: cosine similarity between the query vector and the stored vectors of one
  embedding model, over the rows the filters allow. The cached matrix is scored whole;
  SQL then says which of the best rows pass the filters, so the result is that of
  ranking only the filtered rows without fetching every filtered id.
- hybrid: 0.7 × cosine + 0.3 × text match level, so exact wording breaks ties.
With `rank="learned"`, scores are weighted by what feedback taught about the
prompt's persona, phase, provider and model (see `prompts.learning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When

from alchemy_site.errors import Invalid
from prompts.embeddings import (
    best_positions,
    get_embedder,
    is_local_embedder,
    parse_vector,
    vector_index,
)
from prompts.filters import filter_prompts, text_match
from prompts.learning import COLUMN_TRAITS, with_learned_score
from prompts.models import Prompt

Mode = Literal["text", "semantic", "hybrid"]
Rank = Literal["default", "learned"]
SEMANTIC_WEIGHT = 0.7
MAX_LIMIT = 500
LEARNED_POOL = 10
# Semantic filtering probes the best PROBE_FIRST rows, then 8× more, up to PROBE_MAX. The
# default filter (not archived) admits nearly all: the first probe usually suffices.
PROBE_FIRST = 64
PROBE_GROWTH = 8
PROBE_MAX = 2048
ID_BATCH = 900  # ids per `pk__in` query: under SQLite's 999 bound parameters


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
        # The space's size is checked against its matrix when scoring (no query here).
        return embedding_model, parse_vector(vector, model=embedding_model, dimensions=None)
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
    allowed = filter_prompts(filters)
    if mode == "text":
        base = with_learned_score(allowed) if rank == "learned" else allowed
        return _text_search(base, query=query, limit=limit, rank=rank)
    model, qvec = query_vector(query=query, vector=vector, embedding_model=embedding_model)
    # Learned weights (0.5–1.5×) re-rank a wider pool than the page.
    keep = limit * LEARNED_POOL if rank == "learned" else limit
    scored = _semantic_scores(
        allowed=allowed,
        model=model,
        qvec=qvec,
        text=query if mode == "hybrid" else "",
        keep=keep,
    )
    if not scored:
        return []
    # Every scored id passed `allowed` already (_best_allowed asked): fetch them by pk.
    prompts = Prompt.objects.filter(pk__in=list(scored)).order_by()  # sorted below
    if rank == "learned":
        prompts = with_learned_score(prompts)
    hits = [Hit(p, scored[p.pk], mode) for p in with_tag_names(prompts)]
    if rank == "learned":
        for hit in hits:
            hit.score *= _learned_weight(hit.prompt)
    hits.sort(key=lambda h: (-h.score, -h.prompt.relevance_score, str(h.prompt.pk)))
    return hits[:limit]


def _among(allowed, ids: list):
    """The prompts of `ids` that `allowed` admits.

    Written as pk lookups with a correlated EXISTS so SQLite walks the primary key:
    with `pk IN (…)` beside the filters it picked a filter's index and scanned
    tens of thousands of rows to answer for a few hundred ids.
    """
    return (
        Prompt.objects.filter(pk__in=ids)
        .filter(Exists(allowed.filter(pk=OuterRef("pk"))))
        .order_by()
    )


def _semantic_scores(*, allowed, model: str, qvec: np.ndarray, text: str, keep: int) -> dict:
    """{prompt id: score} for the `keep` best rows `allowed` admits, best first.

    Every row of the model's cached matrix is scored at once; the filters are then
    asked only about the best rows (see `_best_allowed`), never about all of them.
    """
    found = vector_index.scores(model=model, query=qvec)
    if found is None:
        return {}
    entry, scores = found
    if text.strip():
        # Text levels can lift any allowed row, so they join the score before ranking.
        levels = np.zeros(scores.size, dtype=np.float64)
        rows = (
            allowed.filter(embedding_model=model)
            .filter(text_match(text))
            .annotate(level=_match_level(text))
        )
        for pk, level in rows.values_list("id", "level").iterator():
            position = entry.positions.get(pk)
            if position is not None:
                levels[position] = level
        scores = SEMANTIC_WEIGHT * scores.astype(np.float64) + (1 - SEMANTIC_WEIGHT) * levels / 3
    best = _best_allowed(entry, scores, allowed, keep)
    return {entry.ids[i]: float(scores[i]) for i in best}


def _best_allowed(entry, scores: np.ndarray, allowed, keep: int) -> np.ndarray:
    """Matrix rows of the `keep` best-scoring prompts that pass `allowed`, best first.

    The same rows as ranking only the filtered prompts: walk the global ranking in
    growing windows and ask SQL which ids of each window pass. When the pass rate
    seen so far says the filter admits fewer prompts than the next window holds,
    fetch the admitted ids instead (few, then) and rank those.
    """
    window = min(scores.size, max(PROBE_FIRST, 4 * keep))
    examined = np.zeros(0, dtype=np.int64)
    chosen: list[int] = []
    while True:
        order = best_positions(scores, None, window)
        fresh = order[np.isin(order, examined, invert=True)]
        for first in range(0, fresh.size, ID_BATCH):
            batch = fresh[first : first + ID_BATCH].tolist()
            ids = [entry.ids[i] for i in batch]
            passed = set(_among(allowed, ids).values_list("id", flat=True))
            chosen += [i for i, pk in zip(batch, ids, strict=True) if pk in passed]
        if len(chosen) >= keep or window == scores.size:
            return np.asarray(chosen[:keep], dtype=np.int64)
        following = min(scores.size, window * PROBE_GROWTH)
        admitted = len(chosen) / window * scores.size  # an estimate
        if window >= PROBE_MAX or admitted <= following:
            break
        examined, window = order, following
    # Without the model condition: SQLite would walk that index over the whole space.
    # Rows of other models are not in the matrix, so the positions drop them.
    ids = allowed.order_by().values_list("id", flat=True).iterator()
    positions = np.fromiter(
        (entry.positions[pk] for pk in ids if pk in entry.positions), dtype=np.int64
    )
    return best_positions(scores, positions, keep)


def _text_search(base, *, query: str, limit: int, rank: Rank) -> list[Hit]:
    if not query.strip():
        raise Invalid("Text search needs a query.")
    order = ["-level"]
    if rank == "learned":
        order.append("-learned_score")
    order += ["-relevance_score", "-created_at", "-id"]
    rows = base.filter(text_match(query)).annotate(level=_match_level(query)).order_by(*order)
    return [Hit(p, round(p.level / 3, 6), "text") for p in with_tag_names(rows[:limit])]


def with_tag_names(prompts) -> list[Prompt]:
    """The prompts, each with `tag_names` (sorted), which PromptOut shows for its tags.

    One query for all their names: `prefetch_related("tags")` builds a related manager and
    queryset per prompt, about 1 ms for a page of ten (a sixth of a semantic search).
    """
    prompts = list(prompts)
    names: dict[Any, list[str]] = {p.pk: [] for p in prompts}
    rows = (
        Prompt.tags.through.objects.filter(prompt_id__in=list(names))
        .order_by("tag__name")
        .values_list("prompt_id", "tag__name")
    )
    for prompt_id, name in rows:
        names[prompt_id].append(name)
    for prompt in prompts:
        prompt.tag_names = names[prompt.pk]
    return prompts
