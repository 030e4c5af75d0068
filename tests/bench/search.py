"""Free-text search over the big eval's outputs; semantic search over 100k prompts."""

from __future__ import annotations

import time

import numpy as np

from evals import selectors
from prompts import search as prompt_search
from prompts import services as prompt_services
from prompts.embeddings import vector_index
from tests.bench.common import MARKER, Context, Figure, log, repeat, repeat_alternately
from tests.bench.reads import COLD, forget_filtered

EMBEDDING_MODEL = "bench-minilm-384"
DIMENSIONS = 384
PROMPT_BATCH = 500


def measure_text_search(ctx: Context) -> None:
    """First page of the table filtered by a word in about 1 output in 200."""

    def call():
        return selectors.table_page(
            eval=selectors.get_eval(ctx.big_eval_id), limit=50, search=MARKER
        )

    page = call()
    # Searches are cached like other filtered views: the target is for computing one.
    timing = repeat(call, budget=ctx.scale.budget_seconds, least=5, setup=forget_filtered)
    ctx.add(Figure("search", "free-text search, first page", timing.median_ms, "ms median",
                   "≤ 100", ok=timing.median_ms <= 100,
                   detail={**timing.summary(), "filtered_count": page["filtered_count"],
                           **COLD}))  # fmt: skip
    warm = repeat(call, budget=ctx.scale.budget_seconds)
    ctx.add(Figure("search", "free-text search, first page (cached)", warm.median_ms,
                   "ms median", "report", detail=warm.summary()))  # fmt: skip


def build_prompts(count: int, rng: np.random.Generator) -> float:
    """`count` prompts with client vectors, through prompts.services.create_prompts.

    (The registry's bulk import, prompts.transfer.import_records, was slower: ~170/s.)
    Returns prompts/s.
    """
    started = time.perf_counter()
    for first in range(0, count, PROMPT_BATCH):
        size = min(PROMPT_BATCH, count - first)
        vectors = rng.standard_normal((size, DIMENSIONS), dtype=np.float32)
        items = [
            {"content": f"Bench prompt {first + i}: summarise the quarterly report briefly.",
             "phase": "coagulatio", "provider": "openai", "model": "gpt-4o-mini",
             "tags": ["bench"],
             "vector": prompt_services.Vector(vectors[i].tolist(), EMBEDDING_MODEL, "bench")}
            for i in range(size)
        ]  # fmt: skip
        prompt_services.create_prompts(items=items)
        done = first + size
        if done % 10_000 == 0 or done == count:
            log(f"prompts: {done:,} ({done / (time.perf_counter() - started):,.0f}/s)")
    return count / (time.perf_counter() - started)


def measure_semantic_search(ctx: Context) -> None:
    rng = np.random.default_rng(5)
    rate = build_prompts(ctx.scale.prompts, rng)
    ctx.add(Figure("build", "prompts stored via create_prompts", rate, "prompts/s", "report",
                   detail={"prompts": ctx.scale.prompts}))  # fmt: skip
    queries = rng.standard_normal((64, DIMENSIONS), dtype=np.float32)
    query_lists = [q.tolist() for q in queries]
    entry = vector_index.get(EMBEDDING_MODEL)  # builds the process's matrix once
    assert entry is not None
    matrix = entry.matrix.copy()  # the same matrix, owned by the baseline
    app_turn, bare_turn = iter(range(10**9)), iter(range(10**9))  # the same queries, in turn

    def app() -> None:
        vector = query_lists[next(app_turn) % len(query_lists)]
        hits = prompt_search.search(
            mode="semantic", vector=vector, embedding_model=EMBEDDING_MODEL, limit=10
        )
        assert len(hits) == 10

    def bare() -> None:
        query = queries[next(bare_turn) % len(queries)]
        scores = matrix @ (query / np.linalg.norm(query))
        best = np.argpartition(-scores, 9)[:10]
        best[np.argsort(-scores[best])]

    app_t, bare_t = repeat_alternately(app, bare, budget=ctx.scale.budget_seconds)
    ratio = app_t.median_ms / bare_t.median_ms
    ctx.add(Figure("search", f"semantic search top-10 over {ctx.scale.prompts:,} prompts",
                   app_t.median_ms, "ms median", "≤ 2 × baseline", bare_t.median_ms, ratio,
                   ratio <= 2, {"app": app_t.summary(), "baseline": bare_t.summary(),
                                "matrix_builds": vector_index.builds}))  # fmt: skip
