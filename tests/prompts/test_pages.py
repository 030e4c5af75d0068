from __future__ import annotations

import datetime
from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts import services
from prompts.learning import record_feedback
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db


def test_the_list_page_needs_a_login(client):
    response = client.get(reverse("prompts:list"))

    assert response.status_code == HTTPStatus.FOUND
    assert "/accounts/login/" in response["Location"]


def test_the_list_page_searches_and_filters(logged_in_client, django_assert_max_num_queries):
    for i in range(12):
        PromptFactory(content=f"sql helper {i}", tags=["sql", f"t{i}"], persona="code")
    PromptFactory(content="poem about the sea", persona="writing")

    with django_assert_max_num_queries(8):
        response = logged_in_client.get(
            reverse("prompts:list"), {"q": "sql", "persona": "code", "sort": "relevance"}
        )

    assert response.status_code == HTTPStatus.OK
    assert response.context["page"].paginator.count == 12
    assert b"poem about the sea" not in response.content


def test_a_bad_filter_value_shows_an_error_not_a_crash(logged_in_client):
    response = logged_in_client.get(reverse("prompts:list"), {"phase": "nigredo"})

    assert response.status_code == HTTPStatus.OK
    assert b"phase" in response.content


def test_the_detail_page_shows_lineage_history_feedback_and_chart(logged_in_client):
    root = PromptFactory(content="root prompt")
    prompt = PromptFactory(content="line one\nline two", parent=root)
    PromptFactory(content="child prompt", parent=prompt)
    services.update_prompt(
        prompt=prompt, content="line one\nline 2", reason="fix", updated_by="bob"
    )
    start = timezone.now() - datetime.timedelta(days=3)
    for day, rate in enumerate((0.5, 0.7, 0.9)):
        services.add_metric(
            prompt=prompt, success_rate=rate, now=start + datetime.timedelta(days=day)
        )
    record_feedback(prompt=prompt, rating=4, feedback_text="solid")

    response = logged_in_client.get(reverse("prompts:detail", args=[prompt.pk]))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "root prompt" in html and "child prompt" in html
    assert '<span class="add">+line 2</span>' in html
    assert '<span class="del">-line two</span>' in html
    assert "<polyline" in html
    assert "solid" in html


def test_a_missing_prompt_page_is_a_404(logged_in_client):
    response = logged_in_client.get(
        reverse("prompts:detail", args=["00000000-0000-0000-0000-000000000000"])
    )

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_the_rating_form_records_feedback(logged_in_client):
    prompt = PromptFactory()

    response = logged_in_client.post(
        reverse("prompts:feedback", args=[prompt.pk]), {"rating": "5", "feedback_text": "nice"}
    )

    assert response.status_code == HTTPStatus.FOUND
    prompt.refresh_from_db()
    assert prompt.feedback_count == 1


def test_the_rating_form_refuses_six_stars(logged_in_client):
    prompt = PromptFactory()

    logged_in_client.post(reverse("prompts:feedback", args=[prompt.pk]), {"rating": "6"})

    prompt.refresh_from_db()
    assert prompt.feedback_count == 0
