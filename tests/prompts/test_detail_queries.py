"""The prompt page reads lineage, history, feedback, metrics and related evals in a
constant number of queries, however much of each there is."""

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


def busy_prompt(size: int):
    root = PromptFactory(content="root prompt")
    prompt = PromptFactory(content="the prompt", parent=root, tags=["a", "b"])
    for index in range(size):
        PromptFactory(content=f"child {index}", parent=prompt)
        services.update_prompt(prompt=prompt, content=f"the prompt v{index}", reason="edit")
        services.add_metric(
            prompt=prompt,
            success_rate=0.5,
            now=timezone.now() - datetime.timedelta(days=index),
        )
        record_feedback(prompt=prompt, rating=4, feedback_text=f"note {index}")
    return prompt


def test_the_prompt_page_makes_a_constant_number_of_queries(
    logged_in_client, django_assert_max_num_queries
):
    for size in (1, 8):
        prompt = busy_prompt(size)
        with django_assert_max_num_queries(15):
            response = logged_in_client.get(reverse("prompts:detail", args=[prompt.pk]))
        assert response.status_code == HTTPStatus.OK
