from __future__ import annotations

from http import HTTPStatus

import numpy as np
import pytest
from django.urls import reverse

from prompts.embeddings import get_embedder, vector_index
from prompts.learning import record_feedback
from prompts.models import Prompt
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db

SUMMARY = "Summarize this article in three bullet points"
PARAPHRASE = "Write a short summary of the article using three bullets"
UNRELATED = "Translate the SQL query into idiomatic Python code"


def search(api_client, **body):
    return api_client.post(reverse("api:search_prompts"), body, content_type="application/json")


def unit(values) -> list[float]:
    vector = np.asarray(values, dtype=np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


def test_the_default_embedder_is_offline_normalised_and_384_wide():
    embedder = get_embedder()
    vectors = embedder.embed([SUMMARY, ""])

    assert (embedder.name, embedder.dimensions) == ("alchemy-hash-384", 384)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)


def test_semantic_search_ranks_the_paraphrase_above_an_unrelated_prompt(api_client):
    paraphrase = PromptFactory(content=PARAPHRASE)
    PromptFactory(content=UNRELATED)

    response = search(api_client, query=SUMMARY, mode="semantic", limit=2)

    assert response.status_code == HTTPStatus.OK
    results = response.json()["results"]
    assert results[0]["prompt"]["id"] == str(paraphrase.pk)
    assert results[0]["score"] > results[1]["score"]


def test_text_search_matches_content_input_and_tags_and_ranks_phrase_first(api_client):
    words = PromptFactory(content="The article: summarize it")
    phrase = PromptFactory(content="Please summarize article now")
    tagged = PromptFactory(content="Nothing here", tags=["summarize", "article"])
    from_input = PromptFactory(content="Other", original_input="summarize article")
    PromptFactory(content="Unrelated text")

    response = search(api_client, query="summarize article", mode="text")

    ids = [hit["prompt"]["id"] for hit in response.json()["results"]]
    assert ids[:2] == [str(phrase.pk), str(from_input.pk)]
    assert set(ids) == {str(p.pk) for p in (words, phrase, tagged, from_input)}


def test_text_search_applies_filters_before_the_limit(api_client):
    for _ in range(5):
        PromptFactory(content="sql helper", provider="openai")
    wanted = PromptFactory(content="sql helper", provider="anthropic")

    response = search(
        api_client, query="sql", mode="text", limit=1, filters={"provider": "anthropic"}
    )

    assert [hit["prompt"]["id"] for hit in response.json()["results"]] == [str(wanted.pk)]


def test_semantic_filters_apply_before_ranking(api_client):
    PromptFactory(content=SUMMARY, persona="writing")
    other = PromptFactory(content=UNRELATED, persona="code")

    response = search(
        api_client, query=SUMMARY, mode="semantic", limit=5, filters={"persona": "code"}
    )

    assert [hit["prompt"]["id"] for hit in response.json()["results"]] == [str(other.pk)]


def test_client_vectors_are_searched_only_within_their_own_model(api_client):
    near = PromptFactory()
    api_client.patch(
        reverse("api:update_prompt", args=[near.pk]),
        {"embedding": {"values": unit([1, 0, 0, 0]), "model": "toy-4"}},
        content_type="application/json",
    )
    far = PromptFactory()
    api_client.patch(
        reverse("api:update_prompt", args=[far.pk]),
        {"embedding": {"values": unit([0, 1, 0, 0]), "model": "toy-4"}},
        content_type="application/json",
    )
    PromptFactory()  # stays in the default 384-d space

    response = search(api_client, mode="semantic", vector=[0.9, 0.1, 0, 0], embedding_model="toy-4")

    results = response.json()["results"]
    assert [hit["prompt"]["id"] for hit in results] == [str(near.pk), str(far.pk)]
    assert results[0]["score"] == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-5)


def test_a_vector_beyond_32_bit_floats_is_a_422_that_says_so(api_client):
    body = {"content": "x", "phase": "solutio", "provider": "openai", "model": "m"}

    response = api_client.post(
        reverse("api:create_prompt"),
        {**body, "embedding": {"values": [1e39, 0.0, 0.5], "model": "toy-3"}},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "within ±3.4e38" in response.json()["detail"]
    assert not Prompt.objects.exists()


def test_a_wrong_dimension_vector_is_a_422_and_nothing_is_saved(api_client):
    body = {"content": "x", "phase": "solutio", "provider": "openai", "model": "m"}
    api_client.post(
        reverse("api:create_prompt"),
        {**body, "embedding": {"values": [0.1] * 1536, "model": "text-embedding-3-small"}},
        content_type="application/json",
    )

    response = api_client.post(
        reverse("api:create_prompt"),
        {**body, "embedding": {"values": [0.1] * 768, "model": "text-embedding-3-small"}},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["expected_dimensions"] == 1536
    assert Prompt.objects.count() == 1


def test_a_wrong_dimension_query_vector_is_a_422(api_client):
    PromptFactory()

    response = search(
        api_client, mode="semantic", vector=[1.0, 0.0], embedding_model="alchemy-hash-384"
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_the_vector_index_is_rebuilt_only_when_rows_change():
    PromptFactory(content=SUMMARY)
    vector_index.clear()
    query = get_embedder().embed([PARAPHRASE])[0]

    vector_index.top_k(model="alchemy-hash-384", query=query, candidate_ids=None, limit=5)
    builds = vector_index.builds
    vector_index.top_k(model="alchemy-hash-384", query=query, candidate_ids=None, limit=5)
    assert vector_index.builds == builds

    PromptFactory(content=PARAPHRASE)
    hits = vector_index.top_k(model="alchemy-hash-384", query=query, candidate_ids=None, limit=5)
    assert vector_index.builds == builds + 1
    assert len(hits) == 2


def test_hybrid_search_prefers_exact_wording_among_similar_prompts(api_client):
    exact = PromptFactory(content=SUMMARY)
    PromptFactory(content=PARAPHRASE)

    response = search(api_client, query=SUMMARY, mode="hybrid", limit=2)

    assert response.json()["results"][0]["prompt"]["id"] == str(exact.pk)


def test_learned_ranking_prefers_prompts_whose_traits_got_good_feedback(api_client):
    liked = PromptFactory(content="sql helper one", persona="code")
    PromptFactory(content="sql helper two", persona="writing")
    for _ in range(5):
        record_feedback(prompt=PromptFactory(persona="code", content="other"), rating=5)

    response = search(api_client, query="sql helper", mode="text", rank="learned")

    assert response.json()["results"][0]["prompt"]["id"] == str(liked.pk)


# The key's user, the hits, their tags; semantic: the space's version and the filter's check
# of the best ids; hybrid: the text levels too.
@pytest.mark.parametrize(("mode", "queries"), [("text", 3), ("semantic", 5), ("hybrid", 6)])
def test_hits_show_their_tags_sorted_in_a_fixed_number_of_queries(
    api_client, django_assert_num_queries, mode, queries
):
    for n in range(6):
        PromptFactory(content=f"{SUMMARY} {n}", tags=["zeta", f"tag-{n}", "alpha"])
    PromptFactory(content=f"{SUMMARY} untagged")
    search(api_client, query=SUMMARY, mode=mode, limit=10)  # the vector index is built

    with django_assert_num_queries(queries):  # as many for seven hits as for one
        response = search(api_client, query=SUMMARY, mode=mode, limit=10)

    hits = {h["prompt"]["content"]: h["prompt"]["tags"] for h in response.json()["results"]}
    assert len(hits) == 7
    assert hits[f"{SUMMARY} 3"] == ["alpha", "tag-3", "zeta"]
    assert hits[f"{SUMMARY} untagged"] == []
