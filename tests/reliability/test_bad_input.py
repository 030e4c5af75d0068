"""Hand-written bad input: each gets a 4xx with a message, and nothing is stored.

Requests go through Django's test client with `raise_request_exception=False`, so a bug
shows up as the 500 a client would get rather than as a traceback in the test.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.test import Client

from evals.models import Eval, EvalResult
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db

EVAL_ID = "eval-bad-2025-01-01T00:00:00"


@pytest.fixture
def http(api_key) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}", raise_request_exception=False)


@pytest.fixture
def eval_():
    return make_eval(id=EVAL_ID)


def post(http: Client, path: str, body: bytes | str, content_type: str = "application/json"):
    return http.post(path, data=body, content_type=content_type)


def assert_refused(response, *statuses: int) -> dict:
    expected = statuses or (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert response.status_code in expected, (response.status_code, response.content[:500])
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def results_url(eval_id: str = EVAL_ID) -> str:
    return f"/api/evals/{eval_id}/results"


def nested(depth: int) -> str:
    """JSON text nested `depth` arrays deep (json.dumps itself would hit the recursion limit)."""
    return "[" * depth + '"bottom"' + "]" * depth


@pytest.mark.parametrize(
    "body",
    [b"{", b"[{]", b"results=1", b"", b"null", b'"a string"', b"[1, 2]", b'{"results": {}}'],
    ids=["open-brace", "bad-list", "form", "empty", "null", "string", "numbers", "object"],
)
def test_malformed_result_bodies_are_refused_and_nothing_is_stored(http, eval_, body):
    assert_refused(post(http, results_url(), body))
    assert not EvalResult.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("testIdx", "7"), ("testIdx", -1), ("testIdx", 1.5), ("promptIdx", None),
        ("success", "yes"), ("score", "high"), ("latencyMs", [1]), ("metadata", [1, 2]),
        ("namedScores", "x"), ("failureReason", 7), ("response", "plain text"),
    ],
)  # fmt: skip
def test_wrong_types_in_a_result_are_refused_naming_the_field(http, eval_, field, value):
    batch = [result(0), {**result(1), field: value}]
    body = assert_refused(post(http, results_url(), json.dumps(batch)))
    assert field in body["detail"]
    assert not EvalResult.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_results_are_refused(http, eval_, literal):
    body = json.dumps([result(0)]).replace('"score": 1.0', f'"score": {literal}')
    assert literal in body
    assert_refused(post(http, results_url(), body))
    assert not EvalResult.objects.exists()


def test_non_finite_numbers_in_an_eval_config_are_refused(http):
    body = '{"id": "eval-nan-2025-01-01T00:00:00", "prompts": [{"raw": "p"}], "config": {"t": NaN}}'
    response = post(http, "/api/evals", body)
    assert "config.t" in assert_refused(response)["detail"]
    assert not Eval.objects.exists()


def test_invalid_utf8_is_refused(http, eval_):
    assert_refused(post(http, results_url(), b'[{"promptIdx": 0, "testIdx": 0, "x": "\xff\xfe"}]'))
    assert_refused(post(http, "/api/evals", b'{"prompts": [{"raw": "\xc3\x28"}]}'))
    assert not EvalResult.objects.exists()
    assert Eval.objects.count() == 1


def test_a_ten_megabyte_eval_id_is_refused(http):
    huge = "eval-" + "x" * 10_000_000
    body = json.dumps({"id": huge, "prompts": [{"raw": "p"}]})
    assert_refused(post(http, "/api/evals", body))
    assert not Eval.objects.exists()


def test_a_ten_megabyte_string_in_a_result_is_refused_or_stored_whole(http, eval_):
    """Either answer is fine; what matters is no 5xx and no truncated row."""
    big = "y" * 10_000_000
    response = post(http, results_url(), json.dumps([result(0, output=big)]))
    assert response.status_code < 500, response.content[:500]
    if response.status_code == HTTPStatus.OK:
        stored = EvalResult.objects.get()
        text = stored.response["output"]
        assert text == big or text.startswith("promptfoo://blob/")
    else:
        assert_refused(response, response.status_code)
        assert not EvalResult.objects.exists()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_results_are_refused_or_stored_without_a_server_error(http, eval_, depth):
    body = json.dumps([{**result(0), "metadata": {"deep": "DEEP"}}]).replace(
        '"DEEP"', nested(depth)
    )
    response = post(http, results_url(), body)
    assert response.status_code < 500, response.content[:300]
    if response.status_code != HTTPStatus.OK:
        assert_refused(response, response.status_code)
        assert not EvalResult.objects.exists()


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_eval_configs_are_refused_or_stored_without_a_server_error(http, depth):
    body = json.dumps({"prompts": [{"raw": "p"}], "config": {"deep": "DEEP"}}).replace(
        '"DEEP"', nested(depth)
    )
    response = post(http, "/api/evals", body)
    assert response.status_code < 500, response.content[:300]


def test_an_oversized_batch_is_refused_with_413(http, eval_, settings):
    settings.RESULTS_BATCH_LIMIT = 10
    body = assert_refused(
        post(http, results_url(), json.dumps([result(t) for t in range(11)])),
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )
    assert "10" in body["detail"]
    assert not EvalResult.objects.exists()


@pytest.mark.parametrize(
    "eval_id",
    ["eval-nope-2025-01-01T00:00:00", "a:b:c", "eval%2Fslash", "..%2F..%2Fetc%2Fpasswd", "x%00y"],
)  # fmt: skip
def test_unknown_eval_ids_with_colons_and_slashes_get_a_json_404(http, eval_id):
    for path in (
        f"/api/evals/{eval_id}",
        f"/api/evals/{eval_id}/table",
        f"/api/evals/{eval_id}/stats",
    ):
        response = http.get(path)
        assert response.status_code == HTTPStatus.NOT_FOUND, (path, response.content[:300])
        assert response.json()["detail"], path
    response = post(http, results_url(eval_id), json.dumps([result(0)]))
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not EvalResult.objects.exists()


def test_eval_ids_with_slashes_or_whitespace_are_refused_at_creation(http):
    for bad in ("a/b", "../x", "a b", " ", ""):
        body = json.dumps({"id": bad, "prompts": [{"raw": "p"}]})
        assert_refused(post(http, "/api/evals", body))
    assert not Eval.objects.exists()


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2fsecret_key", "0" * 63 + "/",
     "A" * 64, "../" + "a" * 61],
)  # fmt: skip
def test_blob_paths_outside_the_store_are_refused(http, name):
    response = http.get(f"/api/blobs/{name}")
    assert response.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND), name
    assert b"root:" not in response.content and b"SECRET" not in response.content


SQL_FIELDS = [
    "a'); DROP TABLE evals_eval; --",
    'a") OR 1=1 --',
    "$.x') IS NOT NULL OR ('1'='1",
    "x' UNION SELECT password FROM auth_user --",
]


@pytest.mark.parametrize("field", SQL_FIELDS)
@pytest.mark.parametrize("operator", ["equals", "exists", "gt"])
def test_filter_field_names_carrying_sql_select_nothing_and_change_nothing(
    http, eval_, field, operator
):
    post(http, results_url(), json.dumps([result(0, metadata={"a": "x"}), result(1)]))
    filters = json.dumps([{"type": "metadata", "field": field, "operator": operator, "value": 1}])
    response = http.get(f"/api/evals/{EVAL_ID}/table", {"filters": filters})
    assert response.status_code == HTTPStatus.OK, response.content[:300]
    assert response.json()["filtered_count"] == 0
    stats = http.get(f"/api/evals/{EVAL_ID}/stats", {"filters": filters})
    assert stats.status_code == HTTPStatus.OK
    assert Eval.objects.count() == 1 and EvalResult.objects.count() == 2


@pytest.mark.parametrize(
    "filters",
    ["not json", '{"type": "nope"}', '[{"type": "metadata"}]', '[{"type": "metadata", "field": "a", '
     '"operator": "gt", "value": "big"}]', json.dumps([{"type": "plugin"}] * 51),
     "[" * 1000 + "]" * 1000,
     '[{"type": "metadata", "field": "a", "operator": "equals", "value": {"x": 1}}]'],
)  # fmt: skip
def test_malformed_filters_are_refused_with_a_message(http, eval_, filters):
    for view in ("table", "stats"):
        assert_refused(http.get(f"/api/evals/{EVAL_ID}/{view}", {"filters": filters}))


@pytest.mark.parametrize("operator", ["contains", "not_contains"])
def test_a_text_operator_on_a_metric_is_refused_with_a_message(http, eval_, operator):
    filters = json.dumps([{"type": "metric", "field": "acc", "operator": operator, "value": "x"}])
    for view in ("table", "stats"):
        response = http.get(f"/api/evals/{EVAL_ID}/{view}", {"filters": filters})
        body = assert_refused(response, HTTPStatus.UNPROCESSABLE_ENTITY)
        assert body["field"] == "filters" and "gte" in body["detail"], body


@pytest.mark.parametrize(
    "params",
    [{"search": "a\x00b"}, {"filters": json.dumps([{"type": "plugin", "value": "a\x00"}])},
     {"filters": json.dumps([{"type": "metadata", "field": "k\x00", "operator": "exists"}])}],
    ids=["search", "filter-value", "filter-field"],
)  # fmt: skip
def test_nul_bytes_in_searches_and_filters_get_no_server_error(http, eval_, params):
    for view in ("table", "stats"):
        response = http.get(f"/api/evals/{EVAL_ID}/{view}", params)
        assert response.status_code < 500, (view, response.content[:200])
