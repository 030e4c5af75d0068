"""The NinjaAPI's project-wide answers to errors no endpoint handles itself."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connection
from django.test import Client

from tests.evals.factories import make_eval

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


def test_a_nul_byte_in_an_api_path_is_a_json_404(http):
    response = http.get("/api/evals/x%00y/table")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{"search": "a\x00b"}, {"k\x00": "v"}, {"filters": '[{"type": "plugin", "value": "\x00"}]'}],
)
def test_a_nul_byte_in_a_query_value_or_name_is_a_json_400(http, params):
    response = http.get("/api/evals", params)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "NUL" in response.json()["detail"]


def test_a_multipart_api_body_is_left_for_the_endpoint_to_read(http):
    make_eval(id="eval-nul-2025-01-01T00:00:00")
    response = http.post("/api/evals/eval-nul-2025-01-01T00:00:00/results", {"a": "b\x00"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "JSON" in response.json()["detail"]


def test_a_nul_byte_in_a_page_query_or_form_is_a_plain_400(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("nul"))
    assert client.get("/evals/", {"search": "a\x00"}).status_code == HTTPStatus.BAD_REQUEST
    response = client.post("/accounts/login/", {"username": "a\x00", "password": "x"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("text/plain")
    assert client.get("/evals/x%00y/").status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/evals", '{"prompts": [{"raw": "p"}], "description": "a\\u0000b"}'),
        ("/api/evals", '{"prompts": [{"raw": "p"}], "config": {"k": "c\\u0000"}}'),
        (
            "/api/evals/eval-nul-2025-01-01T00:00:00/results",
            '[{"promptIdx": 0, "testIdx": 0, "metadata": {"k": "c\\u0000"}}]',
        ),
    ],
    ids=["text-column", "json-column", "result-json"],
)
def test_a_nul_character_in_a_json_body_is_stored_or_refused_with_a_422(http, path, body):
    make_eval(id="eval-nul-2025-01-01T00:00:00")
    response = http.post(path, data=body, content_type="application/json")
    if connection.vendor == "postgresql":  # text and jsonb can't hold NUL
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.content[:300]
        assert "NUL" in response.json()["detail"]
    else:
        assert response.status_code < HTTPStatus.BAD_REQUEST, response.content[:300]


@pytest.mark.parametrize("path", ["/api/nope", "/api/evals/a%2Fb/table", "/api/evals/x/y/z/w"])
def test_unknown_api_paths_get_a_json_404_with_or_without_a_key(http, client, path):
    for who in (http, client):
        response = who.get(path)
        assert response.status_code == HTTPStatus.NOT_FOUND, path
        assert response.json()["detail"].startswith("No API endpoint"), path


def test_unknown_page_paths_still_get_djangos_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"].startswith("text/html")
