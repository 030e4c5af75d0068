from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.urls import reverse

from prompts.learning import record_feedback
from prompts.models import EnhancementHistory, Prompt, UserFeedback
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_prompt_changelist_searches_filters_and_sorts(
    admin_client, django_assert_max_num_queries
):
    for _ in range(10):
        PromptFactory(content="sql helper", tags=["sql"])
    url = reverse("admin:prompts_prompt_changelist")

    with django_assert_max_num_queries(15):
        response = admin_client.get(url, {"q": "sql", "phase__exact": "prima-materia", "o": "6"})

    assert response.status_code == HTTPStatus.OK
    assert b"sql helper" in response.content


def test_the_prompt_change_page_shows_inlines_and_computed_fields(admin_client):
    prompt = PromptFactory()
    record_feedback(prompt=prompt, rating=4)

    response = admin_client.get(reverse("admin:prompts_prompt_change", args=[prompt.pk]))

    assert response.status_code == HTTPStatus.OK
    assert prompt.content_hash.encode() in response.content


def test_editing_content_in_the_admin_goes_through_the_service(admin_client):
    prompt = PromptFactory(content="before", tags=["a"])
    url = reverse("admin:prompts_prompt_change", args=[prompt.pk])
    data = {
        "content": "after",
        "original_input": "",
        "tags": [t.pk for t in prompt.tags.all()],
        "phase": "solutio",
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": "",
        "max_tokens": "",
        "actual_tokens": "",
        "persona": "generic",
        "target_model_family": "",
        "target_use_case": "",
        "session_id": "",
        "source_type": "manual",
        "enhancement_method": "",
        "parent": "",
        "variant_of": "",
    }
    for prefix in ("metadata", "metrics", "history", "feedback"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = admin_client.post(url, data)

    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    prompt.refresh_from_db()
    assert (prompt.content, prompt.phase) == ("after", "solutio")
    assert EnhancementHistory.objects.get(prompt=prompt).updated_by == "root"


def test_the_export_action_downloads_the_selected_prompts(admin_client):
    wanted = PromptFactory()
    PromptFactory()

    response = admin_client.post(
        reverse("admin:prompts_prompt_changelist"),
        {"action": "export_json", "_selected_action": [str(wanted.pk)]},
    )

    document = json.loads(response.content)
    assert [row["id"] for row in document["tables"]["prompts"]] == [str(wanted.pk)]


def test_the_recompute_and_reembed_actions_run(admin_client):
    prompt = PromptFactory()
    Prompt.objects.filter(pk=prompt.pk).update(relevance_score=0.01)
    url = reverse("admin:prompts_prompt_changelist")

    admin_client.post(url, {"action": "recompute_relevance", "_selected_action": [str(prompt.pk)]})
    admin_client.post(url, {"action": "reembed_selected", "_selected_action": [str(prompt.pk)]})

    prompt.refresh_from_db()
    assert prompt.relevance_score == pytest.approx(0.6, abs=0.01)


def test_feedback_added_in_the_admin_updates_the_prompt(admin_client):
    prompt = PromptFactory()

    response = admin_client.post(
        reverse("admin:prompts_userfeedback_add"),
        {
            "prompt": str(prompt.pk),
            "rating": "5",
            "feedback_type": "",
            "feedback_text": "great",
            "session_id": "",
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    prompt.refresh_from_db()
    assert (prompt.feedback_count, UserFeedback.objects.count()) == (1, 1)


def test_the_feedback_list_filters_by_rating(admin_client):
    prompt = PromptFactory()
    record_feedback(prompt=prompt, rating=2)
    record_feedback(prompt=prompt, rating=5)

    response = admin_client.get(reverse("admin:prompts_userfeedback_changelist"), {"rating": "5"})

    assert response.status_code == HTTPStatus.OK
    assert response.context["cl"].result_count == 1


def test_adding_a_prompt_in_the_admin_hashes_and_embeds_it(admin_client):
    data = {
        "content": "brand new",
        "original_input": "",
        "phase": "solutio",
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": "",
        "max_tokens": "",
        "actual_tokens": "",
        "persona": "generic",
        "target_model_family": "",
        "target_use_case": "",
        "session_id": "",
        "source_type": "manual",
        "enhancement_method": "",
        "parent": "",
        "variant_of": "",
    }
    for prefix in ("metadata", "metrics", "history", "feedback"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = admin_client.post(reverse("admin:prompts_prompt_add"), data)

    assert response.status_code == HTTPStatus.FOUND, response.content[:2000]
    prompt = Prompt.objects.get()
    assert (prompt.content_hash != "", prompt.dimensions) == (True, 384)
