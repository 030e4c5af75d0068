"""The NinjaAPI's project-wide answers to errors no endpoint handles itself."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def http(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}", raise_request_exception=False)


def test_a_recursion_error_in_a_handler_is_a_400_not_a_server_error(http, monkeypatch):
    def too_deep(**kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("evals.selectors.eval_list", too_deep)
    response = http.get("/api/evals")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "The request is nested too deeply."}
