"""Filtered semantic search returns exactly what ranking only the filtered prompts would."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from prompts import search as prompt_search
from prompts import services
from prompts.embeddings import from_bytes
from prompts.filters import filter_prompts
from prompts.models import Prompt

pytestmark = pytest.mark.django_db

MODEL = "toy-8"
PHASES = ["prima-materia", "solutio", "coagulatio"]
PROVIDERS = ["openai", "anthropic", "google"]
FILTERS = [
    None,
    {"phase": "solutio"},
    {"provider": "google"},
    {"tag": "rare"},
    {"tag": "rare", "phase": "coagulatio"},
    {"archived": True},
    {"min_relevance": 0.5},
    {"tag": "nobody-has-this"},
]


@pytest.fixture
def corpus() -> list[Prompt]:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((60, 8), dtype=np.float32)
    items = [
        {
            "content": f"Toy prompt {n}",
            "phase": PHASES[n % 3],
            "provider": PROVIDERS[n % 4 % 3],
            "model": "m",
            "tags": ["rare"] if n % 7 == 0 else ["common"],
            "vector": services.Vector(vectors[n].tolist(), MODEL),
        }
        for n in range(60)
    ]
    prompts = services.create_prompts(items=items)
    Prompt.objects.filter(pk__in=[p.pk for p in prompts[::5]]).update(archived_at=timezone.now())
    Prompt.objects.filter(pk__in=[p.pk for p in prompts[::4]]).update(relevance_score=0.9)
    elsewhere = services.Vector(rng.standard_normal(4).tolist(), "toy-4")
    services.create_prompt(content="Toy prompt 1 in another space", phase="solutio",
                           provider="openai", model="m", vector=elsewhere)  # fmt: skip
    return prompts


def brute_force(query: np.ndarray, filters, limit: int) -> list[tuple[str, float]]:
    rows = filter_prompts(filters).filter(embedding_model=MODEL).values_list("id", "embedding")
    unit = query / np.linalg.norm(query)
    scored = []
    for pk, raw in rows:
        vector = from_bytes(raw).astype(np.float64)
        scored.append((str(pk), float(vector @ unit / np.linalg.norm(vector))))
    scored.sort(key=lambda pair: -pair[1])
    return scored[:limit]


@pytest.mark.parametrize("probe", [(256, 2048), (2, 4), (3, 100)], ids=["default", "tiny", "grows"])
@pytest.mark.parametrize("filters", FILTERS, ids=str)
def test_filtered_semantic_results_match_a_brute_force_ranking(corpus, monkeypatch, filters, probe):
    monkeypatch.setattr(prompt_search, "PROBE_FIRST", probe[0])
    monkeypatch.setattr(prompt_search, "PROBE_MAX", probe[1])
    rng = np.random.default_rng(8)
    for query in rng.standard_normal((4, 8)):
        for limit in (1, 5, 60):
            hits = prompt_search.search(
                mode="semantic", vector=query.tolist(), embedding_model=MODEL,
                limit=limit, filters=filters,
            )  # fmt: skip
            expected = brute_force(query, filters, limit)

            assert [str(h.prompt.pk) for h in hits] == [pk for pk, _ in expected]
            assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_semantic_search_sees_a_row_archived_elsewhere_without_rebuilding(corpus):
    query = from_bytes(Prompt.objects.get(pk=corpus[1].pk).embedding).tolist()

    def top() -> str:
        return str(prompt_search.search(mode="semantic", vector=query, embedding_model=MODEL,
                                        limit=1)[0].prompt.pk)  # fmt: skip

    assert top() == str(corpus[1].pk)
    # Another process archives it: the space's change token does not move.
    Prompt.objects.filter(pk=corpus[1].pk).update(archived_at=timezone.now())

    assert top() != str(corpus[1].pk)


def test_hybrid_results_match_a_brute_force_ranking(corpus):
    query = np.random.default_rng(9).standard_normal(8)
    hits = prompt_search.search(mode="hybrid", query="prompt 1", vector=query.tolist(),
                                embedding_model=MODEL, limit=10, filters={"phase": "solutio"})  # fmt: skip

    semantic = brute_force(query, {"phase": "solutio"}, 100)
    contents = {str(pk): text.lower() for pk, text in Prompt.objects.values_list("id", "content")}

    def level(pk: str) -> int:  # phrase in content: 3; every word somewhere: 1; else 0
        if "prompt 1" in contents[pk]:
            return 3
        return 1 if all(word in contents[pk] for word in ("prompt", "1")) else 0

    expected = sorted(
        ((pk, 0.7 * cos + 0.3 * level(pk) / 3) for pk, cos in semantic), key=lambda pair: -pair[1]
    )[:10]
    assert [str(h.prompt.pk) for h in hits] == [pk for pk, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)
