from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from prompts.hashing import content_hash
from prompts.models import EnhancementHistory, Prompt
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


def create_url() -> str:
    return reverse("api:create_prompt")


def detail_url(prompt) -> str:
    return reverse("api:get_prompt", args=[prompt.pk])


def test_it_creates_a_prompt_with_hash_tags_and_default_embedding(api_client):
    response = api_client.post(
        create_url(),
        {
            "content": "Summarise this article",
            "phase": "solutio",
            "provider": "anthropic",
            "model": "claude-3-5-haiku",
            "tags": ["SQL", " backend ", "sql"],
        },
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert body["content_hash"] == content_hash("Summarise this article")
    assert body["tags"] == ["backend", "sql"]
    assert body["embedding_model"] == "alchemy-hash-384"
    assert body["dimensions"] == 384


def test_it_rejects_an_unknown_phase(api_client):
    response = api_client.post(
        create_url(),
        {"content": "x", "phase": "nigredo", "provider": "openai", "model": "m"},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_it_needs_authentication(client):
    response = client.get(reverse("api:list_prompts"))

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_get_by_id_among_many_rows_returns_the_right_one(api_client):
    prompts = [PromptFactory() for _ in range(30)]
    wanted = prompts[17]

    response = api_client.get(detail_url(wanted))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["id"] == str(wanted.pk)
    assert response.json()["content"] == wanted.content


def test_detail_includes_metadata_metrics_history_and_feedback_counts(api_client):
    prompt = PromptFactory()
    api_client.post(
        reverse("api:add_metadata", args=[prompt.pk]),
        {
            "generation_model": "gpt-4o-mini",
            "generation_provider": "openai",
            "processing_time": 120,
            "input_tokens": 1000,
            "output_tokens": 500,
        },
        content_type="application/json",
    )
    api_client.post(
        reverse("api:add_metric", args=[prompt.pk]),
        {"token_usage": 1500, "response_time_ms": 120, "success_rate": 0.9},
        content_type="application/json",
    )
    api_client.patch(
        detail_url(prompt),
        {"content": "A better prompt", "reason": "clarity"},
        content_type="application/json",
    )
    for rating in (5, 4, 4):
        api_client.post(
            reverse("api:add_feedback", args=[prompt.pk]),
            {"rating": rating},
            content_type="application/json",
        )

    body = api_client.get(detail_url(prompt)).json()

    assert body["metadata"][0]["total_tokens"] == 1500
    assert body["metadata"][0]["cost"] == pytest.approx(0.00045)
    assert body["metrics"][0]["success_rate"] == 0.9
    assert body["history"][0]["previous_content"] == prompt.content
    assert body["history"][0]["updated_by"] == "alice"
    assert body["feedback"]["total"] == 3
    assert body["feedback"]["by_rating"]["4"] == 2
    assert body["mean_rating"] == pytest.approx(13 / 3, abs=1e-4)


def test_editing_content_records_history_and_rehashes(api_client):
    prompt = PromptFactory(content="old text")
    old_embedding = bytes(prompt.embedding)

    response = api_client.patch(
        detail_url(prompt),
        {"content": "new text entirely", "reason": "rewrite"},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.OK
    prompt.refresh_from_db()
    assert prompt.content_hash == content_hash("new text entirely")
    assert bytes(prompt.embedding) != old_embedding
    history = EnhancementHistory.objects.get(prompt=prompt)
    assert (history.previous_content, history.updated_content) == ("old text", "new text entirely")
    assert history.update_reason == "rewrite"


def test_deleting_a_prompt_with_children_is_refused_by_default(api_client):
    parent = PromptFactory()
    PromptFactory(parent=parent)

    response = api_client.delete(detail_url(parent))

    assert response.status_code == HTTPStatus.CONFLICT
    assert "children=reparent" in response.json()["detail"]
    assert Prompt.objects.filter(pk=parent.pk).exists()


def test_deleting_with_reparent_moves_children_to_the_grandparent(api_client):
    grandparent = PromptFactory()
    parent = PromptFactory(parent=grandparent)
    child = PromptFactory(parent=parent)

    response = api_client.delete(detail_url(parent) + "?children=reparent")

    assert response.status_code == HTTPStatus.NO_CONTENT
    child.refresh_from_db()
    assert child.parent_id == grandparent.pk


def test_deleting_with_cascade_removes_the_whole_subtree(api_client):
    root = PromptFactory()
    child = PromptFactory(parent=root)
    PromptFactory(parent=child)

    response = api_client.delete(detail_url(root) + "?children=cascade")

    assert response.status_code == HTTPStatus.NO_CONTENT
    assert Prompt.objects.count() == 0


def test_a_missing_prompt_is_a_404(api_client):
    response = api_client.get(
        reverse("api:get_prompt", args=["00000000-0000-0000-0000-000000000000"])
    )

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_batch_create_is_all_or_nothing(api_client):
    good = {"content": "fine", "phase": "solutio", "provider": "openai", "model": "m"}
    bad = {**good, "parent_id": "00000000-0000-0000-0000-000000000000"}

    response = api_client.post(
        reverse("api:create_prompts"), {"items": [good, bad]}, content_type="application/json"
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["detail"].startswith("item 1:")
    assert Prompt.objects.count() == 0


def test_batch_create_stores_every_item(api_client):
    item = {"content": "fine", "phase": "solutio", "provider": "openai", "model": "m"}

    response = api_client.post(
        reverse("api:create_prompts"), {"items": [item, item]}, content_type="application/json"
    )

    assert response.status_code == HTTPStatus.CREATED
    assert Prompt.objects.filter(content_hash=content_hash("fine")).count() == 2


def test_use_bumps_usage_count_and_last_used(api_client):
    prompt = PromptFactory()

    response = api_client.post(reverse("api:use_prompt", args=[prompt.pk]))

    assert response.status_code == HTTPStatus.OK
    assert response.json()["usage_count"] == 1
    assert response.json()["last_used_at"] is not None
