from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.urls import reverse

from evals import services
from evals.models import EvalResult
from tests.evals.factories import grid, make_eval, prompt, result

pytestmark = pytest.mark.django_db

COLON_ID = "eval-WJi-2025-10-01T20:08:11"


def url(name: str, **kwargs) -> str:
    return reverse(f"api:{name}", kwargs=kwargs)


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_an_eval_is_created_and_fetched_by_an_id_with_colons(api_client):
    response = post(
        api_client,
        url("create_eval"),
        {"id": COLON_ID, "config": {}, "prompts": [prompt()], "tags": {"team": "ml"}},
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    detail = api_client.get(url("get_eval", eval_id=COLON_ID))
    assert detail.status_code == HTTPStatus.OK
    assert detail.json()["id"] == COLON_ID and detail.json()["tags"] == {"team": "ml"}


def test_an_unknown_eval_is_404_with_a_message(api_client):
    response = api_client.get(url("get_eval", eval_id="eval-nope-2025-01-01T00:00:00"))
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "eval-nope" in response.json()["detail"]


def test_requests_without_credentials_are_refused(client):
    assert client.get(url("list_evals")).status_code == HTTPStatus.UNAUTHORIZED


def test_results_are_posted_and_counted(api_client):
    eval_ = make_eval(id=COLON_ID)
    response = post(api_client, url("add_results", eval_id=COLON_ID), grid(3))
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json() == {"stored": 6, "skipped": 0}
    listed = api_client.get(url("list_evals")).json()
    assert listed["items"][0]["result_count"] == 6 and listed["items"][0]["id"] == eval_.id


def test_a_bad_result_is_422_naming_index_and_field_and_stores_nothing(api_client):
    make_eval(id=COLON_ID)
    batch = grid(2)
    batch[3]["testIdx"] = "x"
    response = post(api_client, url("add_results", eval_id=COLON_ID), {"results": batch})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["index"] == 3 and response.json()["field"] == "testIdx"
    assert not EvalResult.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("score", 10**400), ("latencyMs", 2**31)])
def test_a_number_no_column_can_hold_is_422_not_a_server_error(api_client, field, value):
    make_eval(id=COLON_ID)
    batch = grid(1)
    batch[1][field] = value
    response = post(api_client, url("add_results", eval_id=COLON_ID), batch)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["index"] == 1 and response.json()["field"] == field
    assert not EvalResult.objects.exists()


def test_a_batch_over_the_limit_is_413(api_client, settings):
    settings.RESULTS_BATCH_LIMIT = 2
    make_eval(id=COLON_ID)
    response = post(api_client, url("add_results", eval_id=COLON_ID), grid(2))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_a_non_json_body_is_422(api_client):
    make_eval(id=COLON_ID)
    response = api_client.post(
        url("add_results", eval_id=COLON_ID), "{nope", content_type="application/json"
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_complete_then_more_results_is_a_conflict(api_client):
    make_eval(id=COLON_ID)
    done = post(api_client, url("complete_eval", eval_id=COLON_ID), {"duration_ms": 5})
    assert done.json()["status"] == "complete"
    again = post(api_client, url("add_results", eval_id=COLON_ID), grid(1))
    assert again.status_code == HTTPStatus.CONFLICT


def test_table_pages_are_two_phase_and_bounded_in_queries(
    api_client, django_assert_max_num_queries
):
    eval_ = make_eval(id=COLON_ID)
    services.add_results(eval=eval_, results=grid(30))
    with django_assert_max_num_queries(10):
        page = api_client.get(url("table", eval_id=COLON_ID), {"offset": 20, "limit": 5}).json()
    assert [row["test_idx"] for row in page["body"]] == [20, 21, 22, 23, 24]
    assert page["total_count"] == page["filtered_count"] == 30
    assert len(page["body"][0]["outputs"]) == 2
    assert page["head"]["vars"] == ["word"]


def test_filtered_table_metrics_agree_with_the_filtered_count(
    api_client, django_assert_max_num_queries
):
    eval_ = make_eval(id=COLON_ID)
    services.add_results(eval=eval_, results=grid(4) + grid(6, success=False)[8:])
    with django_assert_max_num_queries(12):
        page = api_client.get(url("table", eval_id=COLON_ID), {"mode": "failures"}).json()
    assert page["filtered_count"] == 2
    assert sum(m["result_count"] for m in page["filtered_metrics"]) == 4
    assert all(m["fail_count"] == 2 for m in page["filtered_metrics"])


def test_a_limit_over_500_is_refused(api_client):
    make_eval(id=COLON_ID)
    response = api_client.get(url("table", eval_id=COLON_ID), {"limit": 501})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_bad_filters_json_is_422(api_client):
    make_eval(id=COLON_ID)
    response = api_client.get(url("stats", eval_id=COLON_ID), {"filters": "[{"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_list_endpoint_query_count_does_not_grow_with_evals(
    api_client, django_assert_max_num_queries
):
    for n in range(5):
        services.add_results(eval=make_eval(tags={"n": str(n)}), results=grid(2))
    with django_assert_max_num_queries(6):
        listed = api_client.get(url("list_evals"), {"tag": "n=3"}).json()
    assert listed["count"] == 1 and listed["items"][0]["result_count"] == 4


def test_a_result_is_fetched_and_rated(api_client):
    eval_ = make_eval(id=COLON_ID)
    services.add_results(eval=eval_, results=[result(0, success=False)])
    row = EvalResult.objects.get()
    got = api_client.get(url("get_result", eval_id=COLON_ID, result_id=row.pk))
    assert got.json()["success"] is False
    rated = api_client.patch(
        url("rate_result", eval_id=COLON_ID, result_id=row.pk),
        json.dumps({"pass": True, "reason": "good"}),
        content_type="application/json",
    )
    assert rated.status_code == HTTPStatus.OK and rated.json()["success"] is True
    stats = api_client.get(url("stats", eval_id=COLON_ID)).json()
    assert stats["prompts"][0]["metrics"]["pass_count"] == 1


def test_stats_count_the_tests_in_the_view(api_client):
    eval_ = make_eval(id=COLON_ID, prompts=2)
    services.add_results(
        eval=eval_,
        results=[result(t, p, success=not (t == 1 and p == 0)) for t in range(3) for p in range(2)],
    )
    everything = api_client.get(url("stats", eval_id=COLON_ID)).json()
    failures = api_client.get(url("stats", eval_id=COLON_ID), {"mode": "failures"}).json()
    assert (everything["test_count"], failures["test_count"]) == (3, 1)
    assert failures["totals"]["result_count"] == 1


def test_compare_lists_flipped_tests(api_client):
    before = make_eval(prompts=1)
    after = make_eval(prompts=1)
    services.add_results(eval=before, results=[result(0), result(1, success=False)])
    services.add_results(eval=after, results=[result(0, success=False), result(1)])
    body = api_client.get(url("compare_evals"), {"ids": f"{before.id},{after.id}"}).json()
    pair = body["comparisons"][0]
    assert [t["test_idx"] for t in pair["newly_failing_tests"]] == [0]
    assert [t["test_idx"] for t in pair["newly_passing_tests"]] == [1]


def test_compare_needs_two_ids(api_client):
    response = api_client.get(url("compare_evals"), {"ids": "one"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_delete_removes_the_eval(api_client):
    make_eval(id=COLON_ID)
    assert (
        api_client.delete(url("delete_eval", eval_id=COLON_ID)).status_code == HTTPStatus.NO_CONTENT
    )
    assert api_client.get(url("get_eval", eval_id=COLON_ID)).status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_exports_stream_every_result(api_client, fmt):
    eval_ = make_eval(id=COLON_ID)
    services.add_results(eval=eval_, results=grid(3))
    response = api_client.get(url("export", eval_id=COLON_ID), {"format": fmt})
    assert response.status_code == HTTPStatus.OK and response.streaming
    text = b"".join(response.streaming_content).decode()
    if fmt == "json":
        assert len(json.loads(text)["results"]["results"]) == 6
    else:
        assert len(text.strip().splitlines()) == 6 + (fmt == "csv")


def test_an_unknown_export_format_is_422(api_client):
    make_eval(id=COLON_ID)
    response = api_client.get(url("export", eval_id=COLON_ID), {"format": "xml"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
