"""Free-text search over the big eval's outputs; semantic search over 100k prompts."""

from __future__ import annotations

import base64
import time
import uuid

import numpy as np

from evals import selectors
from prompts import search as prompt_search
from prompts import services as prompt_services
from prompts import transfer
from prompts.embeddings import vector_index
from prompts.hashing import content_hash
from tests.bench.common import MARKER, Context, Figure, log, repeat

EMBEDDING_MODEL = "bench-minilm-384"
DIMENSIONS = 384
PROMPT_BATCH = 500
CREATE_COUNT = 1000  # prompts written one at a time, to report that rate


def measure_text_search(ctx: Context) -> None:
    """First page of the table filtered by a word in about 1 output in 200."""

    def call():
        return selectors.table_page(
            eval=selectors.get_eval(ctx.big_eval_id), limit=50, search=MARKER
        )

    page = call()
    timing = repeat(call, budget=ctx.scale.budget_seconds, least=5)
    ctx.add(Figure("search", "free-text search, first page", timing.median_ms, "ms median",
                   "≤ 100", ok=timing.median_ms <= 100,
                   detail={**timing.summary(), "filtered_count": page["filtered_count"]}))  # fmt: skip


def build_prompts(count: int, rng: np.random.Generator) -> float:
    """`count` prompts with client vectors, through the registry's import service.

    `prompts.transfer.import_records` is the registry's bulk write path (validation,
    bulk_create, the vector space touched once); `create_prompts` goes one prompt at a
    time and is measured separately (`create_rate`). Returns prompts/s.
    """
    started = time.perf_counter()
    stamp = "2025-01-01T00:00:00+00:00"
    for first in range(0, count, PROMPT_BATCH * 10):
        size = min(PROMPT_BATCH * 10, count - first)
        vectors = rng.standard_normal((size, DIMENSIONS), dtype=np.float32)
        records = []
        for i in range(size):
            content = f"Bench prompt {first + i}: summarise the quarterly report briefly."
            row = {
                "id": str(uuid.UUID(int=first + i + 1)), "content": content,
                "content_hash": content_hash(content), "phase": "coagulatio",
                "provider": "openai", "model": "gpt-4o-mini", "created_at": stamp,
                "updated_at": stamp, "embedding_model": EMBEDDING_MODEL,
                "embedding_provider": "bench", "dimensions": DIMENSIONS,
                "embedding": base64.b64encode(vectors[i].astype("<f4").tobytes()).decode(),
            }  # fmt: skip
            records.append(transfer.Record(f"prompts[{first + i}]", "prompts", row))
        transfer.import_records(records=records)
        done = first + size
        log(f"prompts: {done:,} ({done / (time.perf_counter() - started):,.0f}/s)")
    return count / (time.perf_counter() - started)


def create_rate(count: int, rng: np.random.Generator) -> float:
    """prompts/s of prompts.services.create_prompts (one create_prompt per item)."""
    vectors = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    items = [
        {"content": f"Bench single prompt {i}", "phase": "coagulatio", "provider": "openai",
         "model": "gpt-4o-mini", "tags": ["bench"],
         "vector": prompt_services.Vector(vectors[i].tolist(), EMBEDDING_MODEL, "bench")}
        for i in range(count)
    ]  # fmt: skip
    started = time.perf_counter()
    prompt_services.create_prompts(items=items)
    return count / (time.perf_counter() - started)


def measure_semantic_search(ctx: Context) -> None:
    rng = np.random.default_rng(5)
    import_rate = build_prompts(ctx.scale.prompts - CREATE_COUNT, rng)
    single_rate = create_rate(CREATE_COUNT, rng)
    ctx.add(Figure("build", "prompts stored via create_prompts", single_rate, "prompts/s",
                   "report", detail={"prompts": CREATE_COUNT,
                                     "import_records_rate": round(import_rate)}))  # fmt: skip
    queries = rng.standard_normal((64, DIMENSIONS), dtype=np.float32)
    query_lists = [q.tolist() for q in queries]
    entry = vector_index.get(EMBEDDING_MODEL)  # builds the process's matrix once
    assert entry is not None
    matrix = entry.matrix.copy()  # the same matrix, owned by the baseline
    turn = iter(range(10**9))

    def app() -> None:
        vector = query_lists[next(turn) % len(query_lists)]
        hits = prompt_search.search(
            mode="semantic", vector=vector, embedding_model=EMBEDDING_MODEL, limit=10
        )
        assert len(hits) == 10

    def bare() -> None:
        query = queries[next(turn) % len(queries)]
        scores = matrix @ (query / np.linalg.norm(query))
        best = np.argpartition(-scores, 9)[:10]
        best[np.argsort(-scores[best])]

    app_t = repeat(app, budget=ctx.scale.budget_seconds)
    bare_t = repeat(bare, budget=ctx.scale.budget_seconds)
    ratio = app_t.median_ms / bare_t.median_ms
    ctx.add(Figure("search", f"semantic search top-10 over {ctx.scale.prompts:,} prompts",
                   app_t.median_ms, "ms median", "≤ 2 × baseline", bare_t.median_ms, ratio,
                   ratio <= 2, {"app": app_t.summary(), "baseline": bare_t.summary(),
                                "matrix_builds": vector_index.builds}))  # fmt: skip
