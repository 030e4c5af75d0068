from __future__ import annotations

from http import HTTPStatus

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from prompts.selectors import evals_for_hash
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db

evals_models = pytest.importorskip("evals.models")


def eval_with_prompt(eval_id: str, text: str, *, passes: int, fails: int) -> None:
    Eval = apps.get_model("evals", "Eval")
    PromptText = apps.get_model("evals", "PromptText")
    EvalPrompt = apps.get_model("evals", "EvalPrompt")
    EvalPromptStats = apps.get_model("evals", "EvalPromptStats")
    from prompts.hashing import content_hash

    digest = content_hash(text)
    ev = Eval.objects.create(id=eval_id, created_at=timezone.now(), description=f"run {eval_id}")
    prompt_text, _ = PromptText.objects.get_or_create(
        id=digest, defaults={"text": text, "content_hash": digest}
    )
    EvalPrompt.objects.create(
        eval=ev, prompt_text=prompt_text, prompt_idx=0, label="p", provider="openai:gpt-4o"
    )
    EvalPromptStats.objects.create(
        eval=ev, prompt_idx=0, pass_count=passes, fail_count=fails, result_count=passes + fails
    )


def test_evals_that_tested_the_same_text_are_found_in_one_query(django_assert_num_queries):
    prompt = PromptFactory(content="Summarise the ticket")
    eval_with_prompt("eval-a-1", "Summarise the ticket", passes=3, fails=1)
    eval_with_prompt("eval-b-2", "Summarise the ticket", passes=1, fails=1)
    eval_with_prompt("eval-c-3", "Something else", passes=5, fails=0)

    with django_assert_num_queries(1):
        rows = evals_for_hash(prompt.content_hash)

    assert {(r["eval_id"], r["pass_rate"]) for r in rows} == {("eval-a-1", 0.75), ("eval-b-2", 0.5)}


def test_the_detail_page_lists_those_evals_with_pass_rates(logged_in_client):
    prompt = PromptFactory(content="Summarise the ticket")
    eval_with_prompt("eval-a-1", "Summarise the ticket", passes=3, fails=1)

    response = logged_in_client.get(reverse("prompts:detail", args=[prompt.pk]))

    assert response.status_code == HTTPStatus.OK
    assert b"run eval-a-1" in response.content
    assert b"75%" in response.content
