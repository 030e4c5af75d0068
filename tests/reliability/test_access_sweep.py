"""Access sweep: every URL pattern and websocket route, anonymous and as a plain user.

The URL list comes from Django's resolver (walked recursively, converters and admin
regex groups filled with sample values), so a new route is swept the day it is added.
API keys are stored hashed (tests/core/test_auth.py), the secret key file is 0600
(tests/core/test_sqlite.py), and span attributes are redacted (tests/tracing/ and the
flood in test_http_load.py): those are not repeated here.
"""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from alchemy_site.auth import create_api_key, revoke_api_key
from alchemy_site.routing import websocket_urlpatterns
from evals import services
from tests.core.test_auth import api_routes
from tests.evals import factories
from tests.evals.test_consumers import run, socket

pytestmark = pytest.mark.django_db

# Samples tried in order against each converter's regex; the first two are what
# tests/core/test_auth.py puts into OpenAPI paths, so both lists agree.
EVAL_ID = "eval-abc-2025-01-01T00:00:00"
SAMPLES = [EVAL_ID, "1", "00000000-0000-0000-0000-000000000000", "x"]
GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>(?:[^()]|\([^()]*\))*)\)")


def fill_regex(regex: str) -> str:
    """A path matching one of the admin's regex patterns: named groups get samples."""

    def sample(match: re.Match) -> str:
        body = match["body"]
        if re.fullmatch(r"[\w|]+", body):
            return body.split("|")[0]  # admin's app_label alternation
        return "1"

    return re.sub(r"\\(.)", r"\1", GROUP.sub(sample, regex.lstrip("^").rstrip("$")))


def fill_route(pattern) -> str:
    """The route with each converter replaced by the first sample its regex accepts."""

    def sample(match: re.Match) -> str:
        regex = pattern.converters[match["name"]].regex
        return next(s for s in SAMPLES if re.fullmatch(regex, s))

    return re.sub(r"<(?:\w+:)?(?P<name>\w+)>", sample, pattern._route)


def all_paths(patterns=None, prefix: str = "") -> list[str]:
    """Every URL the project routes, one sample path per pattern."""
    paths = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        pattern = entry.pattern
        routed = hasattr(pattern, "_route")
        part = fill_route(pattern) if routed else fill_regex(pattern._regex)
        if isinstance(entry, URLResolver):
            paths += all_paths(entry.url_patterns, prefix + part)
        elif isinstance(entry, URLPattern):
            paths.append("/" + prefix + part)
    return paths


PATHS = all_paths()
API_METHODS = dict(api_routes())


def test_the_sweep_covers_pages_admin_api_and_otlp_routes():
    assert len(PATHS) > 40
    for path in [
        "/",
        "/healthz",
        "/admin/",
        "/api/openapi.json",
        "/v1/traces",
        f"/evals/{EVAL_ID}/",
    ]:
        assert path in PATHS
    for path in PATHS:
        resolve(path)  # every sample path routes to its own pattern's view
    # Every routed API path is an OpenAPI operation, so the method sweep below is complete.
    assert {p for p in PATHS if p.startswith("/api/")} - set(API_METHODS) == {"/api/"}


def test_every_route_turns_anonymous_visitors_away():
    client = Client()
    for path in PATHS:
        if path == "/api/":
            # ninja's root pattern has no view behind it: a plain 404 for everyone.
            assert client.get(path).status_code == HTTPStatus.NOT_FOUND
        elif path.startswith("/api/"):
            for method in API_METHODS[path]:
                response = client.generic(method, path, b"{}", content_type="application/json")
                assert response.status_code == HTTPStatus.UNAUTHORIZED, (method, path)
                assert "detail" in response.json()
        elif path == "/v1/traces":
            response = client.post(path, b"{}", content_type="application/json")
            assert response.status_code == HTTPStatus.UNAUTHORIZED
            assert "message" in response.json()
        elif path.startswith("/v1/"):
            # Metrics and logs are dropped unread: the same empty success for everyone.
            response = client.post(path, b"{}", content_type="application/json")
            assert (response.status_code, response.content) == (HTTPStatus.OK, b"{}"), path
        elif path in ("/healthz", "/accounts/login/", "/admin/login/"):
            assert client.get(path).status_code == HTTPStatus.OK, path
        elif path == "/admin/logout/":
            response = client.post(path)
            assert response.status_code == HTTPStatus.FOUND, path
            assert response["Location"].startswith("/admin/login/"), path
        elif path.startswith("/admin/"):
            # The admin's own views send visitors to its login; model pages meet
            # LoginRequiredMiddleware first, which sends them to the site's.
            response = client.get(path)
            assert response.status_code == HTTPStatus.FOUND, path
            assert response["Location"].startswith(
                ("/admin/login/?next=", "/accounts/login/?next=")
            ), path
        else:
            response = client.get(path)
            assert response.status_code == HTTPStatus.FOUND, path
            assert response["Location"].startswith("/accounts/login/?next="), path


def test_a_plain_user_reaches_no_admin_page(logged_in_client):
    for path in PATHS:
        if not path.startswith("/admin/") or path in ("/admin/login/", "/admin/logout/"):
            continue
        response = logged_in_client.get(path)
        assert response.status_code == HTTPStatus.FOUND, path
        assert response["Location"].startswith("/admin/login/?next="), path


def test_a_revoked_api_key_is_refused_by_every_api_operation(user):
    key, raw = create_api_key(user=user)
    revoke_api_key(key=key)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for path, methods in API_METHODS.items():
        for method in methods:
            response = client.generic(method, path, b"{}", content_type="application/json")
            assert response.status_code == HTTPStatus.UNAUTHORIZED, (method, path)
    response = client.post("/v1/traces", b"{}", content_type="application/json")
    assert response.status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.django_db(transaction=True)
def test_every_websocket_route_closes_anonymous_sockets():
    paths = ["/" + fill_route(route.pattern) for route in websocket_urlpatterns]
    assert len(paths) == len(websocket_urlpatterns) >= 2

    async def scenario():
        for path in paths:
            communicator = socket(path)
            connected, _ = await communicator.connect()
            if connected:
                message = await communicator.receive_output(timeout=2)
                assert message["type"] == "websocket.close" and message["code"] == 4401, path

    run(scenario)


@pytest.fixture
def rated_eval():
    eval_ = factories.make_eval(prompts=1)
    services.add_results(eval=eval_, results=[factories.result(0)])
    return eval_, eval_.results.get().pk


def test_page_forms_refuse_posts_without_a_csrf_token(user, rated_eval):
    eval_, result_id = rated_eval
    row = eval_.results.filter(pk=result_id)
    before = row.values().get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    rate = client.post(f"/evals/{eval_.id}/results/{result_id}/rate/", {"pass": "0"})
    delete = client.post(f"/evals/{eval_.id}/delete/")
    assert (rate.status_code, delete.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    assert row.values().get() == before


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_api_writes_with_a_valid_key_need_no_csrf_token(user, header):
    eval_ = factories.make_eval(prompts=1)
    _, raw = create_api_key(user=user)
    value = f"Bearer {raw}" if header == "HTTP_AUTHORIZATION" else raw
    client = Client(enforce_csrf_checks=True, **{header: value})
    response = client.post(
        f"/api/evals/{eval_.id}/results", [factories.result(0)], content_type="application/json"
    )
    assert response.status_code == HTTPStatus.OK, response.content
