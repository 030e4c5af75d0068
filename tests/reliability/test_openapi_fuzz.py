"""schemathesis against the project's own OpenAPI schema, every operation, authenticated.

In-process through the WSGI handler (same database connection as the test), with a
bearer API key. Checks: no 5xx, and every response with a documented status matches the
documented body schema. Bounded here (a few examples per operation, no deadline);
`--run-slow` runs many more.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis import checks

from alchemy_site.api import api
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/"))
schema.app = WSGIHandler()
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance]
SETTINGS = dict(
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip


@pytest.fixture
def keep_connection():
    """Like Django's test client: the test's transaction must outlive each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def bearer(api_key, keep_connection) -> dict[str, str]:
    # Some real data so generated ids sometimes hit (eval ids are plain strings).
    eval_ = make_eval(id="eval-abc-2025-01-01T00:00:00")
    from evals import services

    services.add_results(eval=eval_, results=[result(t, p) for t in range(3) for p in range(2)])
    return {"Authorization": f"Bearer {api_key}"}


@schema.parametrize()
@settings(max_examples=25, derandomize=True, **SETTINGS)
def test_every_operation_answers_without_server_errors_and_within_its_schema(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)


@pytest.mark.parametrize(
    "url",
    ["/api/prompts/patterns?limit=-1", "/api/prompts/patterns?limit=0", f"/api/evals?offset={10**25}",
     f"/api/evals?offset={2**31}", "/api/evals?limit=0", f"/api/evals?limit={10**25}",
     f"/api/evals/eval-abc-2025-01-01T00:00:00/table?offset={10**25}",
     f"/api/traces?offset={10**25}", f"/api/traces?limit={10**25}", "/api/traces?offset=-1"],
)  # fmt: skip
def test_out_of_range_paging_values_are_refused_with_a_422(bearer, url):
    response = Client(raise_request_exception=False).get(url, headers=bearer)
    assert response.status_code == 422, (response.status_code, response.content[:300])
    assert "offset" in response.json()["detail"] or "limit" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [f"/api/evals?offset={2**31 - 1}", f"/api/traces?offset={2**31 - 1}",
     f"/api/evals/eval-abc-2025-01-01T00:00:00/table?offset={2**31 - 1}&limit=500"],
)  # fmt: skip
def test_the_largest_allowed_offset_is_an_empty_page(bearer, url):
    response = Client(raise_request_exception=False).get(url, headers=bearer)
    assert response.status_code == 200, response.content[:300]


def test_a_date_filter_with_an_extreme_utc_offset_gets_no_server_error(bearer):
    for path, name in (("/api/prompts/", "created_before"), ("/api/traces", "until")):
        response = Client(raise_request_exception=False).get(
            path, {name: "2034-01-08T00:18:51-22:53"}, headers=bearer
        )
        assert response.status_code == 200, (path, response.content[:300])


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=300, **SETTINGS)
def test_every_operation_survives_many_generated_requests(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)
