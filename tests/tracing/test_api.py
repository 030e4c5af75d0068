from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from django.urls import reverse

from tests.tracing.factories import make_trace

pytestmark = pytest.mark.django_db


def test_listing_needs_authentication(client):
    response = client.get(reverse("api:traces"))

    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_traces_are_listed_newest_first_with_summaries(api_client, django_assert_max_num_queries):
    make_trace(name="first")
    make_trace(name="second", status=2, children=3)

    with django_assert_max_num_queries(4):
        response = api_client.get(reverse("api:traces"))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["count"] == 2
    second = body["items"][0]
    assert second["name"] == "second"
    assert second["span_count"] == 4 and second["error_count"] == 1
    assert second["status"] == "error"
    assert second["duration_ms"] == 10.0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"eval": "eval-a:1"}, {"a1", "a2"}),
        ({"eval": "eval-a:1", "test_case": "t2"}, {"a2"}),
        ({"name": "A"}, {"a1", "a2"}),
        ({"status": "error"}, {"a2"}),
        ({"min_duration_ms": 50}, {"b"}),
        ({"since": "2023-11-14T00:00:00Z"}, {"a1", "a2", "b"}),
        ({"until": "2023-11-14T00:00:00Z"}, set()),
    ],
)
def test_traces_can_be_filtered(api_client, query, expected):
    make_trace(name="a1", eval_id="eval-a:1", test_case_id="t1")
    make_trace(name="a2", eval_id="eval-a:1", test_case_id="t2", status=2)
    make_trace(name="b", eval_id="eval-b", duration_ms=100)

    response = api_client.get(reverse("api:traces"), query)

    assert response.status_code == HTTPStatus.OK
    assert {item["name"] for item in response.json()["items"]} == expected


def test_a_bad_filter_value_is_a_422(api_client):
    response = api_client.get(reverse("api:traces"), {"status": "sideways"})

    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_a_trace_comes_back_as_a_span_tree_with_durations(api_client):
    trace = make_trace(name="root", children=2, duration_ms=30)

    response = api_client.get(reverse("api:trace", args=[trace.trace_id.upper()]))

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["trace_id"] == trace.trace_id
    [root] = body["spans"]
    assert root["name"] == "root" and root["depth"] == 0 and root["duration_ms"] == 30.0
    assert [child["name"] for child in root["children"]] == ["root.child1", "root.child2"]
    assert root["children"][0]["offset_ms"] == 1.0
    assert root["children"][0]["duration_ms"] == 10.0
    assert root["children"][0]["parent_span_id"] == root["span_id"]
    assert int(root["start_time_unix_nano"]) == trace.start_time_unix_nano
    assert datetime.fromisoformat(body["started_at"]) == datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=UTC
    )


def test_an_unknown_trace_is_a_404(api_client):
    response = api_client.get(reverse("api:trace", args=["0" * 32]))

    assert response.status_code == HTTPStatus.NOT_FOUND
