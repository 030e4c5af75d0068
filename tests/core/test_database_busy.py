"""A database that can't take a request now answers 503 with Retry-After, never a 500.

Real conditions, no mocks: on SQLite another connection holds the write lock past the
busy timeout; on PostgreSQL every connection slot is taken, so opening one fails with
"too many clients" (SQLSTATE 53300).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from http import HTTPStatus

import pytest
from django.db import OperationalError, connection
from django.test import Client

from alchemy_site.api import busy
from evals.models import EvalResult
from tests.evals.factories import result


@pytest.fixture
def eval_id(api_client) -> str:
    response = api_client.post(
        "/api/evals",
        {"description": "busy", "prompts": [{"raw": "Say {{x}}", "label": "p"}]},
        content_type="application/json",
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response.json()["id"]


@contextlib.contextmanager
def write_lock_held_elsewhere() -> Iterator[None]:
    """Another connection to the same SQLite file holds the write lock; this process's
    connection waits 50 ms for it (not the configured 30 s) before giving up."""
    connection.ensure_connection()
    connection.connection.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.close()
        connection.close()  # the next connection gets the configured timeout again


@contextlib.contextmanager
def every_connection_slot_taken() -> Iterator[None]:
    """Open PostgreSQL connections until the server refuses one. Django's pool is closed
    first (its connections would still serve), and the next one waits 1 s, not 10, for a
    connection it can't get."""
    import psycopg

    settings = connection.settings_dict
    pool = settings["OPTIONS"]["pool"]
    connection.close()
    connection.close_pool()
    settings["OPTIONS"]["pool"] = {**pool, "timeout": 1}
    held = []
    try:
        for _ in range(1000):
            try:
                held.append(
                    psycopg.connect(
                        host=settings["HOST"],
                        port=settings["PORT"] or 5432,
                        user=settings["USER"],
                        password=settings["PASSWORD"],
                        dbname=settings["NAME"],
                    )  # fmt: skip
                )
            except psycopg.OperationalError as exc:
                assert "too many clients" in str(exc) or "slots" in str(exc), exc
                break
        else:
            pytest.fail("PostgreSQL took 1,000 connections without refusing one")
        yield
    finally:
        for held_connection in held:
            held_connection.close()
        connection.close()
        connection.close_pool()
        settings["OPTIONS"]["pool"] = pool


def database_cannot_take_requests():
    return every_connection_slot_taken() if connection.vendor == "postgresql" else (
        write_lock_held_elsewhere()
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_adding_results_while_the_database_is_busy_answers_503_and_stores_nothing(
    api_client, eval_id
):
    body = json.dumps({"results": [result(test_idx=0), result(test_idx=1)]})
    url = f"/api/evals/{eval_id}/results"

    with database_cannot_take_requests():
        refused = api_client.post(url, body, content_type="application/json")

    assert refused.status_code == HTTPStatus.SERVICE_UNAVAILABLE, refused.content
    assert refused["Retry-After"] == "1"
    assert "busy" in refused.json()["detail"] and "Retry" in refused.json()["detail"]
    assert EvalResult.objects.filter(eval_id=eval_id).count() == 0
    # The same request, retried, is stored.
    retried = api_client.post(url, body, content_type="application/json")
    assert retried.status_code == HTTPStatus.OK, retried.content
    assert EvalResult.objects.filter(eval_id=eval_id).count() == 2


@pytest.mark.django_db(transaction=True)
def test_pages_answer_503_when_no_database_connection_can_be_had(user):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite always connects; a held write lock does not stop a page's reads")
    browser = Client(raise_request_exception=False)
    browser.force_login(user)

    with every_connection_slot_taken():
        page = browser.get("/evals/")  # the session is read by middleware, before the view
        health = browser.get("/healthz")

    assert page.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert page["Retry-After"] == "1" and b"busy" in page.content
    assert health.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert health.json()["status"] == "unavailable"
    assert "127.0.0.1" not in health.json()["detail"]  # unauthenticated: no server details
    assert browser.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("message", "sqlstate", "expected"),
    [
        ("database is locked", None, True),
        ("database table is locked", None, True),
        ("connection failed: FATAL:  sorry, too many clients already", "53300", True),
        ("FATAL:  remaining connection slots are reserved for superuser", "53300", True),
        ("FATAL:  the database system is starting up", "57P03", True),
        ("terminating connection due to administrator command", "57P01", True),
        ("connection failed: Connection refused", None, True),
        ("couldn't get a connection after 10.00 sec", None, True),
        ("server closed the connection unexpectedly", "08006", True),
        ("no such table: evals_evalresult", None, False),
        ('relation "evals_evalresult" does not exist', "42P01", False),
        ("CHECK constraint failed: JSON_VALID(metadata)", None, False),
    ],
)
def test_which_database_errors_mean_retry_later(message, sqlstate, expected):
    class DriverError(Exception):
        pass

    cause = DriverError(message)
    cause.sqlstate = sqlstate
    exc = OperationalError(message)
    exc.__cause__ = cause

    assert busy(exc) is expected
