"""Access: API keys, 401 for anonymous API calls, login for pages."""

from __future__ import annotations

import re
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from alchemy_site.auth import KEY_PREFIX, create_api_key, revoke_api_key, verify_api_key
from alchemy_site.models import ApiKey

pytestmark = pytest.mark.django_db

SAMPLES = {"uuid": "00000000-0000-0000-0000-000000000000", "integer": "1"}


def sample_path(path: str, operations: dict) -> str:
    kinds = {}
    for op in operations.values():
        for param in op.get("parameters", []):
            if param.get("in") == "path":
                schema = param.get("schema", {})
                kinds[param["name"]] = schema.get("format") or schema.get("type")
    return re.sub(
        r"\{([^}]+)\}",
        lambda m: SAMPLES.get(kinds.get(m.group(1)), "eval-abc-2025-01-01T00:00:00"),
        path,
    )


def api_routes() -> list[tuple[str, set[str]]]:
    """Every documented API operation (path params filled with samples) plus the docs."""
    from alchemy_site.api import api

    schema = api.get_openapi_schema()
    routes = [
        (sample_path(path, ops), {m.upper() for m in ops}) for path, ops in schema["paths"].items()
    ]
    return [*routes, ("/api/openapi.json", {"GET"}), ("/api/docs", {"GET"})]


def test_every_api_route_rejects_anonymous_requests_with_401():
    client = Client()
    routes = api_routes()
    assert len(routes) > 3
    for path, methods in routes:
        for method in methods:
            response = client.generic(method, path, data=b"{}", content_type="application/json")
            assert response.status_code == HTTPStatus.UNAUTHORIZED, (
                method,
                path,
                response.status_code,
            )
            assert "detail" in response.json()


def test_a_valid_key_authenticates_and_a_revoked_one_is_rejected(user):
    key, raw = create_api_key(user=user, name="ci")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/openapi.json").status_code == HTTPStatus.OK
    revoke_api_key(key=key)
    assert client.get("/api/openapi.json").status_code == HTTPStatus.UNAUTHORIZED


def test_the_x_api_key_header_is_accepted_too(api_key):
    assert Client(HTTP_X_API_KEY=api_key).get("/api/openapi.json").status_code == HTTPStatus.OK


def test_keys_of_inactive_users_are_rejected(user, api_key):
    user.is_active = False
    user.save()
    assert verify_api_key(api_key) is None


@pytest.mark.parametrize(
    "raw",
    ["", "alc_", "alc_nounderscore", "Bearer", "alc_abc_def", "x" * 5000, "alc_\u00e9_\u00e9"],
)
def test_malformed_keys_are_rejected_without_errors(raw, user):
    create_api_key(user=user)
    assert verify_api_key(raw) is None


def test_keys_are_stored_only_as_a_hash(user):
    key, raw = create_api_key(user=user)
    # The secret is what follows the prefix's "_" (it may hold "_" itself: urlsafe base64).
    secret = raw[len(KEY_PREFIX) :].partition("_")[2]
    assert len(secret) >= 40
    stored = ApiKey.objects.filter(pk=key.pk).values().get()
    assert not any(secret in str(value) for value in stored.values())
    assert len(key.hashed_key) == 64


def test_last_used_is_touched_at_most_once_per_interval(user, settings):
    settings.API_KEY_TOUCH_INTERVAL = 3600
    key, raw = create_api_key(user=user)
    verify_api_key(raw)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    verify_api_key(raw)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


def test_create_api_key_prints_a_working_key_once(user):
    out = StringIO()
    call_command(
        "create_api_key", "--user", user.username, "--name", "laptop", stdout=out, stderr=StringIO()
    )
    raw = out.getvalue().strip()
    assert verify_api_key(raw).user == user
    assert ApiKey.objects.get().name == "laptop"


def test_create_api_key_for_an_unknown_user_says_what_to_do():
    with pytest.raises(CommandError, match="createsuperuser"):
        call_command("create_api_key", "--user", "nobody", stdout=StringIO(), stderr=StringIO())


def test_pages_redirect_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_renders_for_anonymous_visitors(client):
    response = client.get("/accounts/login/")
    assert response.status_code == HTTPStatus.OK
    assert b"Log in to Alchemy" in response.content


def test_logging_in_leads_home(client, user):
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"}, follow=True
    )
    assert response.status_code == HTTPStatus.OK
    assert response.context["user"] == user


def test_a_non_staff_user_cannot_reach_the_admin(logged_in_client):
    response = logged_in_client.get("/admin/")
    assert response.status_code == HTTPStatus.FOUND
    assert "/admin/login/" in response["Location"]


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "ok"


def test_api_docs_need_auth(logged_in_client):
    assert Client().get("/api/docs").status_code == HTTPStatus.UNAUTHORIZED
    assert logged_in_client.get("/api/docs").status_code == HTTPStatus.OK


def test_session_writes_through_the_api_need_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    routes = [(p, m) for p, m in api_routes() if "POST" in m]
    assert routes, "the API has POST routes"
    path, _ = routes[0]
    response = client.post(path, data="{}", content_type="application/json")
    assert response.status_code in {HTTPStatus.FORBIDDEN, HTTPStatus.UNAUTHORIZED}


def test_repeated_failed_logins_are_rate_limited(client, user, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == HTTPStatus.OK
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"}
    )
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"Too many failed attempts" in response.content
