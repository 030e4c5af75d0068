from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from evals import services
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
