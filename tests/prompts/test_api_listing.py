from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2025, 3, 1, tzinfo=datetime.UTC)


def list_url() -> str:
    return reverse("api:list_prompts")


def test_listing_pages_through_every_prompt_once_by_cursor(api_client):
    created = {str(PromptFactory(now=T0 + datetime.timedelta(minutes=i % 3)).pk) for i in range(7)}
    seen: list[str] = []
    cursor = None

    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api_client.get(list_url(), params).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == 7
    assert set(seen) == created


def test_listing_sorted_by_usage_pages_by_offset(api_client):
    for i in range(4):
        prompt = PromptFactory()
        prompt.__class__.objects.filter(pk=prompt.pk).update(usage_count=i)

    first = api_client.get(list_url(), {"sort": "usage", "limit": 2}).json()
    second = api_client.get(
        list_url(), {"sort": "usage", "limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [p["usage_count"] for p in first["items"] + second["items"]] == [3, 2, 1, 0]


def test_listing_filters_by_tag_phase_and_date(api_client):
    wanted = PromptFactory(tags=["SQL"], phase="solutio", now=T0)
    PromptFactory(tags=["sql"], phase="coagulatio", now=T0)
    PromptFactory(tags=["other"], phase="solutio", now=T0)
    PromptFactory(tags=["sql"], phase="solutio", now=T0 - datetime.timedelta(days=10))

    response = api_client.get(
        list_url(),
        {
            "tag": "sql",
            "phase": "solutio",
            "created_after": (T0 - datetime.timedelta(days=1)).isoformat(),
        },
    )

    assert [item["id"] for item in response.json()["items"]] == [str(wanted.pk)]


def test_a_bad_cursor_is_a_422(api_client):
    response = api_client.get(list_url(), {"cursor": "not-a-cursor"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_listing_query_count_does_not_grow_with_rows(api_client, django_assert_max_num_queries):
    for i in range(25):
        parent = PromptFactory(tags=["a", f"t{i}"])
        PromptFactory(parent=parent, tags=["b"])

    with django_assert_max_num_queries(6):
        response = api_client.get(list_url(), {"limit": 50})

    assert len(response.json()["items"]) == 50


def test_search_query_count_is_bounded(api_client, django_assert_max_num_queries):
    for _ in range(20):
        PromptFactory(content="sql helper", tags=["x", "y"])

    # Auth (2) + candidates, text levels, rows, tags + a cold vector-matrix build (5).
    with django_assert_max_num_queries(11):
        api_client.post(
            reverse("api:search_prompts"),
            {"query": "sql", "mode": "hybrid", "limit": 20},
            content_type="application/json",
        )


def test_patterns_listing_query_count_is_bounded(api_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        api_client.get(reverse("api:list_patterns"))


def test_lineage_across_three_generations(api_client):
    grandparent = PromptFactory()
    parent = PromptFactory(parent=grandparent)
    child = PromptFactory(parent=parent)
    sibling = PromptFactory(parent=parent)
    grandchild = PromptFactory(parent=child)

    response = api_client.get(reverse("api:get_lineage", args=[parent.pk]))

    body = response.json()
    assert [node["id"] for node in body["ancestors"]] == [str(grandparent.pk)]
    assert [node["id"] for node in body["descendants"]] == [str(child.pk), str(sibling.pk)]
    assert body["descendants"][0]["children"][0]["id"] == str(grandchild.pk)

    from_leaf = api_client.get(reverse("api:get_lineage", args=[grandchild.pk])).json()
    assert [n["id"] for n in from_leaf["ancestors"]] == [
        str(grandparent.pk),
        str(parent.pk),
        str(child.pk),
    ]
    grandparent.refresh_from_db()
    parent.refresh_from_db()
    assert (grandparent.generation_count, parent.generation_count) == (1, 2)


def test_a_prompt_cannot_become_its_own_ancestor(api_client):
    parent = PromptFactory()
    child = PromptFactory(parent=parent)

    response = api_client.patch(
        reverse("api:update_prompt", args=[parent.pk]),
        {"parent_id": str(child.pk)},
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_metadata_endpoint_lists_and_prices_generations(api_client):
    prompt = PromptFactory()
    post = api_client.post(
        reverse("api:add_metadata", args=[prompt.pk]),
        {
            "generation_model": "claude-3-5-sonnet-20241022",
            "generation_provider": "anthropic",
            "processing_time": 10,
            "input_tokens": 2_000_000,
            "output_tokens": 1_000_000,
        },
        content_type="application/json",
    )

    listed = api_client.get(reverse("api:list_metadata", args=[prompt.pk])).json()

    assert post.status_code == HTTPStatus.CREATED
    assert listed[0]["cost"] == pytest.approx(2 * 3.0 + 15.0)


def test_metadata_with_inconsistent_totals_is_a_422(api_client):
    prompt = PromptFactory()

    response = api_client.post(
        reverse("api:add_metadata", args=[prompt.pk]),
        {
            "generation_model": "m",
            "generation_provider": "p",
            "processing_time": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "total_tokens": 5,
        },
        content_type="application/json",
    )

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
