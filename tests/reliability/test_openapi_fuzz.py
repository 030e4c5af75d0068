"""schemathesis against the project's own OpenAPI schema, every operation, authenticated.

In-process through the WSGI handler (same database connection as the test), with a
bearer API key. Checks: no 5xx, and every response with a documented status matches the
documented body schema. Bounded here (a few examples per operation, no deadline);
`--run-slow` runs many more.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client
from hypothesis import HealthCheck, assume, settings
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


BIGINT = 2**63 - 1
OFFSET_RE = re.compile(r"T[0-9:.]+[+-](\d\d):?\d\d$")


def known_bug(case) -> bool:
    """Inputs that hit the bugs pinned by the strict xfails below; left out of the fuzzing
    so it keeps looking for new ones. Remove a clause when its xfail flips."""
    query = case.query or {}

    def number(name: str) -> float | None:
        try:
            return float(query.get(name))
        except (TypeError, ValueError):
            return None

    if connection.vendor == "postgresql" and any(
        (m := OFFSET_RE.search(str(v))) and int(m.group(1)) >= 16 for v in query.values()
    ):
        return True
    limit, offset = number("limit"), number("offset")
    if case.path.endswith("/patterns") and limit is not None and limit < 0:
        return True
    return any(value is not None and abs(value) > BIGINT for value in (limit, offset))


@schema.parametrize()
@settings(max_examples=25, derandomize=True, **SETTINGS)
def test_every_operation_answers_without_server_errors_and_within_its_schema(case, bearer):
    assume(not known_bug(case))
    case.call_and_validate(headers=bearer, checks=CHECKS)


@pytest.mark.xfail(
    strict=True,
    reason="BUG: limit/offset query values are unbounded ints; a value past 2**63-1 reaches "
    "SQL as OFFSET/LIMIT and fails (SQLite 'datatype mismatch' IntegrityError, PostgreSQL "
    "'bigint out of range'), and /api/prompts/patterns?limit=-1 slices a queryset with a "
    "negative index (ValueError): all 500s",
)
@pytest.mark.parametrize(
    "url",
    ["/api/prompts/patterns?limit=-1", f"/api/evals?offset={10**25}",
     f"/api/evals/eval-abc-2025-01-01T00:00:00/table?offset={10**25}",
     f"/api/traces?offset={10**25}"],
)  # fmt: skip
def test_out_of_range_paging_values_are_refused_with_a_4xx(bearer, url):
    response = Client(raise_request_exception=False).get(url, headers=bearer)
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.xfail(
    connection.vendor == "postgresql",
    strict=True,
    reason="BUG (PostgreSQL): a date filter whose UTC offset is past ±15:59 (pydantic accepts "
    "up to ±23:59) reaches PostgreSQL, which raises DataError 'time zone displacement out "
    "of range': a 500 on /api/prompts/?created_before=… (and other date filters)",
)
def test_a_date_filter_with_an_extreme_utc_offset_gets_no_server_error(bearer):
    response = Client(raise_request_exception=False).get(
        "/api/prompts/", {"created_before": "2034-01-08T00:18:51-22:53"}, headers=bearer
    )
    assert response.status_code < 500


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=300, **SETTINGS)
def test_every_operation_survives_many_generated_requests(case, bearer):
    assume(not known_bug(case))
    case.call_and_validate(headers=bearer, checks=CHECKS)
