from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connection
from django.urls import reverse

from evals import search, services
from tests.evals.factories import grid, make_eval

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_the_eval_list_shows_counts_from_aggregates(admin_client, django_assert_max_num_queries):
    for _ in range(3):
        services.add_results(eval=make_eval(tags={"team": "ml"}), results=grid(4))
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:evals_eval_changelist"), {"q": "eval-"})
    assert response.status_code == HTTPStatus.OK
    assert b">8<" in response.content


def test_the_results_inline_shows_one_page(admin_client, django_assert_max_num_queries):
    eval_ = make_eval(prompts=1)
    services.add_results(eval=eval_, results=grid(120, prompts=1))
    url = reverse("admin:evals_eval_change", args=[eval_.pk])
    with django_assert_max_num_queries(25):
        response = admin_client.get(url, {"results_page": 3})
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert body.count('class="field-test_idx"') == 20


def test_deleting_an_eval_with_media_confirms_with_counts_and_uses_the_delete_path(
    admin_client, django_assert_max_num_queries
):
    from blobs.models import Blob, BlobReference
    from evals.models import Eval, EvalResult
    from tests.blobs.conftest import data_url, payload

    eval_ = make_eval(prompts=1)
    rows = grid(30, prompts=1)
    rows[0]["response"]["output"] = data_url(payload(4096, seed=9))
    rows[1]["response"]["output"] = "zebracorn"
    services.add_results(eval=eval_, results=rows)
    assert BlobReference.objects.filter(eval=eval_).count() == 1
    url = reverse("admin:evals_eval_delete", args=[eval_.pk])

    with django_assert_max_num_queries(15):  # never one query per result
        confirm = admin_client.get(url)
    assert confirm.status_code == HTTPStatus.OK
    assert confirm.context["model_count"] == {"evals": 1, "eval results": 30}.items()
    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == HTTPStatus.FOUND
    assert not Eval.objects.filter(pk=eval_.pk).exists()
    assert not EvalResult.objects.filter(eval_id=eval_.pk).exists()
    assert not BlobReference.objects.exists()
    assert Blob.objects.count() == 1  # the bytes wait for blobs gc
    if connection.vendor == "sqlite":  # the FTS index forgot the rows too
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM evals_result_fts WHERE evals_result_fts MATCH %s",
                [search.fts_query("zebracorn")],
            )
            assert cursor.fetchone() == (0,)


def test_bulk_deleting_evals_from_the_list_uses_the_delete_path(admin_client):
    from evals.models import Eval, EvalPromptStats

    evals = [make_eval(prompts=1) for _ in range(2)]
    for eval_ in evals:
        services.add_results(eval=eval_, results=grid(3, prompts=1))
    response = admin_client.post(
        reverse("admin:evals_eval_changelist"),
        {"action": "delete_selected", "_selected_action": [e.pk for e in evals], "post": "yes"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert not Eval.objects.exists()
    assert not EvalPromptStats.objects.exists()
