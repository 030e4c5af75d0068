"""selectors.compare_evals and compare_rows: many evals in one pass, capped, batched."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from alchemy_site.errors import Invalid
from evals import selectors, services
from evals.models import EvalOutcomes
from tests.evals import factories

pytestmark = pytest.mark.django_db


def eval_of(outcomes: dict[int, bool]):
    eval_ = factories.make_eval(prompts=1)
    services.add_results(
        eval=eval_, results=[factories.result(t, 0, success=ok) for t, ok in outcomes.items()]
    )
    return eval_


def test_every_eval_is_compared_with_the_base_as_if_pair_by_pair():
    base = eval_of({0: True, 1: True, 2: False, 3: True})
    first = eval_of({0: False, 1: True, 2: True, 5: True})
    second = eval_of({1: False, 2: False, 3: True, 4: True})

    together = selectors.compare_evals(eval_ids=[base.id, first.id, second.id])["comparisons"]
    alone = [
        selectors.compare_evals(eval_ids=[base.id, other.id])["comparisons"][0]
        for other in (first, second)
    ]

    assert together == alone
    one, two = together
    assert (one["common"], one["only_base"], one["only_other"]) == (3, 1, 1)
    assert [t["test_idx"] for t in one["newly_failing_tests"]] == [0]
    assert [t["test_idx"] for t in one["newly_passing_tests"]] == [2]
    assert (two["common"], two["only_base"], two["only_other"]) == (3, 1, 1)
    assert [t["test_idx"] for t in two["newly_failing_tests"]] == [1]


def test_each_eval_is_read_once_whatever_the_number_compared(django_assert_num_queries):
    evals = [eval_of({t: t % (k + 2) != 0 for t in range(20)}) for k in range(4)]
    # Evals, aggregate rows, prompts: one query each; then per (running) eval a look for
    # its snapshot and one pass over its results.
    with django_assert_num_queries(3 + 4 * 2):
        result = selectors.compare_evals(eval_ids=[e.id for e in evals])
    assert [s["result_count"] for s in result["evals"]] == [20] * 4
    assert [len(s["prompts"]) for s in result["evals"]] == [1] * 4


def test_more_than_six_evals_are_refused():
    with pytest.raises(Invalid, match="at most 6"):
        selectors.compare_evals(eval_ids=[f"eval-{n}" for n in range(7)])


def test_the_api_answers_422_past_the_cap(api_client):
    response = api_client.get(
        reverse("api:compare_evals"), {"ids": ",".join(f"e{n}" for n in range(7))}
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_compare_rows_fetches_the_listed_tests_in_one_query_per_eval(django_assert_num_queries):
    a = factories.make_eval(prompts=2)
    b = factories.make_eval(prompts=2)
    services.add_results(eval=a, results=factories.grid(50, prompts=2))
    services.add_results(eval=b, results=factories.grid(40, prompts=2, output="no"))

    with django_assert_num_queries(2):
        rows = selectors.compare_rows(eval_ids=[a.id, b.id], test_idxs=[1, 7, 45])

    assert sorted(rows[a.id]) == [1, 7, 45] and sorted(rows[b.id]) == [1, 7]
    assert rows[a.id][7]["vars"] == {"word": "w7"}
    assert [c["text"] for c in rows[b.id][7]["cells"].values()] == ["no", "no"]
    with django_assert_num_queries(0):
        assert selectors.compare_rows(eval_ids=[a.id], test_idxs=[]) == {a.id: {}}


def test_cached_outcomes_follow_a_rating():
    base, other = factories.make_eval(prompts=1), factories.make_eval(prompts=1)
    services.add_results(eval=base, results=[factories.result(0, 0, success=True)])
    services.add_results(eval=other, results=[factories.result(0, 0, success=True)])
    ids = [base.id, other.id]
    assert selectors.compare_evals(eval_ids=ids)["comparisons"][0]["newly_failing"] == 0
    row = other.results.get()
    services.rate_result(eval=other, result_id=row.pk, passed=False)
    assert selectors.compare_evals(eval_ids=ids)["comparisons"][0]["newly_failing"] == 1


def _compared(base, other):
    selectors._OUTCOMES.clear()  # as another process would: nothing cached in memory
    return selectors.compare_evals(eval_ids=[base.id, other.id])["comparisons"][0]


def completed(outcomes: dict[int, bool], capture):
    eval_ = eval_of(outcomes)
    with capture(execute=True):
        services.complete_eval(eval=eval_)
    return selectors.get_eval(eval_.id)


def test_a_completed_eval_is_compared_from_its_snapshot_without_reading_its_results(
    django_capture_on_commit_callbacks,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    base = completed({0: True, 1: True, 2: False}, django_capture_on_commit_callbacks)
    other = completed({0: False, 1: True, 2: True}, django_capture_on_commit_callbacks)

    with CaptureQueriesContext(connection) as queries:
        pair = _compared(base, other)

    assert (pair["newly_failing"], pair["newly_passing"], pair["common"]) == (1, 1, 3)
    assert not [q["sql"] for q in queries if "evals_evalresult" in q["sql"]]


def test_a_rating_after_completion_is_compared_and_the_snapshot_taken_again(
    django_capture_on_commit_callbacks,
):
    base = completed({0: True, 1: True}, django_capture_on_commit_callbacks)
    other = completed({0: True, 1: True}, django_capture_on_commit_callbacks)
    assert _compared(base, other)["newly_failing"] == 0
    stored_before = EvalOutcomes.objects.get(eval_id=other.id).version

    flipped = other.results.get(test_idx=1)
    services.rate_result(eval=other, result_id=flipped.pk, passed=False)
    other = selectors.get_eval(other.id)

    assert _compared(base, other)["newly_failing"] == 1
    assert EvalOutcomes.objects.get(eval_id=other.id).version != stored_before
    assert _compared(base, other)["newly_failing"] == 1  # from the new snapshot


def test_a_running_eval_is_read_from_its_results_and_leaves_no_snapshot():
    base = eval_of({0: True})
    other = eval_of({0: False})
    assert _compared(base, other)["newly_failing"] == 1
    assert not EvalOutcomes.objects.exists()


def test_a_running_eval_s_header_update_takes_no_snapshot(django_capture_on_commit_callbacks):
    eval_ = eval_of({0: True})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.update_eval_header(eval=eval_, config={"description": "later"})
    assert callbacks  # the header's own after-commit work ran
    assert not EvalOutcomes.objects.exists()


def test_an_import_leaves_the_snapshot_to_its_first_compare(
    django_capture_on_commit_callbacks, tmp_path
):
    import json

    from evals import importers

    export = {
        "evalId": "eval-snap-2025-01-01T00:00:00",
        "results": {
            "version": 3,
            "results": [factories.result(0, 0), factories.result(1, 0, success=False)],
        },
        "config": {"description": "imported"},
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    with django_capture_on_commit_callbacks(execute=True):
        importers.import_json(path)
    assert not EvalOutcomes.objects.exists()

    imported = selectors.get_eval(export["evalId"])
    other = completed({0: True, 1: True}, django_capture_on_commit_callbacks)
    assert _compared(imported, other)["newly_passing"] == 1
    assert EvalOutcomes.objects.filter(eval_id=imported.id).exists()


def test_deleting_an_eval_deletes_its_snapshot(django_capture_on_commit_callbacks):
    eval_ = completed({0: True}, django_capture_on_commit_callbacks)
    assert EvalOutcomes.objects.filter(eval_id=eval_.id).exists()
    services.delete_eval(eval=eval_)
    assert not EvalOutcomes.objects.exists()


def test_results_read_in_chunks_line_up_as_read_at_once(monkeypatch):
    from evals import outcomes

    base = eval_of({t: True for t in range(7)})
    other = eval_of({t: t % 3 != 0 for t in range(7)})
    whole = _compared(base, other)
    monkeypatch.setattr(outcomes, "FETCH_CHUNK", 2)
    assert _compared(base, other) == whole
    assert whole["newly_failing"] == 3  # tests 0, 3 and 6
