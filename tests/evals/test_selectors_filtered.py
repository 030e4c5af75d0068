"""Filtered counts and metrics: computed in one pass and cached until the eval changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evals import selectors, services
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db


def failures(e):
    return selectors.eval_stats(eval=selectors.get_eval(e.id), mode="failures")


def named(stats) -> list[dict]:
    return [p["metrics"]["promptfoo"]["namedScores"] for p in stats["prompts"]]


def test_inline_named_scores_equal_the_json_each_pass(monkeypatch):
    e = make_eval(prompts=2)
    services.add_results(
        eval=e,
        results=[
            result(0, 0, success=False, named_scores={"acc": 0.5, "tone": 2}),
            result(0, 1, success=False, named_scores={"acc": 0.25, "flag": True, "x": "a"}),
            result(1, 0, success=True, named_scores={"acc": 1.0}),
            result(1, 1, success=False, named_scores={}),
        ],
    )
    inline = failures(e)
    monkeypatch.setattr(selectors, "MAX_INLINE_NAMED_SCORES", 0)
    selectors._FILTERED.clear()
    assert failures(e) == inline
    assert named(inline) == [{"acc": 0.5, "tone": 2}, {"acc": 0.25}]


def test_a_cached_filtered_view_moves_with_new_results():
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(0, 0, success=False)])
    assert failures(e)["totals"]["result_count"] == 1
    services.add_results(eval=e, results=[result(1, 0, success=False)])
    assert failures(e)["totals"]["result_count"] == 2
    page = selectors.table_page(eval=selectors.get_eval(e.id), mode="failures")
    assert page["filtered_count"] == 2


def test_a_cached_filtered_view_moves_with_a_rating():
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(0, 0, success=False), result(1, 0)])
    assert failures(e)["totals"]["result_count"] == 1
    row = e.results.get(test_idx=0)
    services.rate_result(eval=e, result_id=row.pk, passed=True)
    assert failures(e)["totals"]["result_count"] == 0
    assert selectors.table_page(eval=selectors.get_eval(e.id), mode="failures")["body"] == []


@pytest.mark.parametrize("mode", ["all", "failures"])
def test_a_keyset_cursor_pages_like_offset(mode):
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(t, 0, success=t % 3 == 0) for t in range(12)])
    e = selectors.get_eval(e.id)

    def indices(**kwargs) -> list[int]:
        page = selectors.table_page(eval=e, mode=mode, limit=3, **kwargs)
        return [row["test_idx"] for row in page["body"]]

    first = indices()
    assert indices(after_test_idx=first[-1]) == indices(offset=3)
    assert indices(after_test_idx=first[-1], offset=1) == indices(offset=4)
    assert indices(after_test_idx=11) == []


def test_the_table_endpoint_takes_the_cursor(api_client):
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(t, 0, success=False) for t in range(5)])
    url = reverse("api:table", kwargs={"eval_id": e.id})
    body = api_client.get(url, {"mode": "failures", "after_test_idx": 2}).json()["body"]
    assert [row["test_idx"] for row in body] == [3, 4]


@pytest.mark.parametrize(("mode", "search"), [("failures", ""), ("passes", "answer")])
def test_a_page_at_any_offset_of_a_filtered_view_starts_at_the_right_test(
    monkeypatch, mode, search
):
    monkeypatch.setattr(selectors, "PAGE_STRIDE", 3)
    e = make_eval(prompts=2)
    services.add_results(
        eval=e,
        results=[
            result(t, p, success=(t * 7 + p) % 3 != 0, output=f"answer {t}")
            for t in range(0, 90, 2)  # sparse test indices
            for p in range(2)
        ],
    )
    selectors._FILTERED.clear()
    wanted = sorted(
        {
            row.test_idx
            for row in e.results.all()
            if (not row.success if mode == "failures" else row.success)
        }
    )
    for offset in range(len(wanted) + 2):
        page = selectors.table_page(eval=e, mode=mode, search=search, offset=offset, limit=4)
        assert [row["test_idx"] for row in page["body"]] == wanted[offset : offset + 4]
        assert page["filtered_count"] == len(wanted)


def test_a_cached_search_moves_with_a_rating_that_changes_only_its_text():
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(0, 0, success=False), result(1, 0, success=False)])

    def found():
        page = selectors.table_page(eval=selectors.get_eval(e.id), search="quixotic")
        return [row["test_idx"] for row in page["body"]]

    assert found() == []
    row = e.results.get(test_idx=1)
    # Still a fail: no aggregate moves, only the grading reason the search reads.
    services.rate_result(eval=e, result_id=row.pk, passed=False, reason="quixotic verdict")
    assert found() == [1]


def test_a_search_view_pages_by_offset_and_by_cursor():
    e = make_eval(prompts=2)
    services.add_results(
        eval=e,
        results=[
            result(t, p, output="needle" if (t + p) % 3 == 0 else "hay")
            for t in range(30)
            for p in range(2)
        ],
    )
    wanted = [t for t in range(30) if t % 3 == 0 or (t + 1) % 3 == 0]
    fresh = selectors.get_eval(e.id)
    pages = [selectors.table_page(eval=fresh, search="needle", offset=o, limit=4) for o in (0, 4)]
    assert [[r["test_idx"] for r in p["body"]] for p in pages] == [wanted[:4], wanted[4:8]]
    after = selectors.table_page(eval=fresh, search="needle", after_test_idx=wanted[3], limit=4)
    assert [r["test_idx"] for r in after["body"]] == wanted[4:8]
    stats = selectors.eval_stats(eval=fresh, search="needle")
    assert stats["totals"]["result_count"] == sum(
        1 for t in range(30) for p in range(2) if (t + p) % 3 == 0
    )


def test_the_cache_drops_old_search_views_to_stay_within_its_budget(monkeypatch):
    monkeypatch.setattr(selectors, "CACHED_TESTS_BUDGET", 5)
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(t, output=f"word{t % 2}") for t in range(6)])
    selectors._FILTERED.clear()
    fresh = selectors.get_eval(e.id)
    assert selectors.table_page(eval=fresh, search="word0")["filtered_count"] == 3
    assert selectors.table_page(eval=fresh, search="word1")["filtered_count"] == 3
    assert [len(v.tests) for v in selectors._FILTERED.values()] == [3]  # 6 > 5: word0 went
    assert selectors.table_page(eval=fresh, search="word")["filtered_count"] == 6
    assert len(selectors._FILTERED) == 0  # alone over the budget: computed, not kept


@pytest.mark.parametrize("mode", ["passes", "failures", "errors"])
def test_stored_outcome_stats_equal_summing_the_results(mode):
    from evals.filters import build_filter

    e = make_eval(prompts=2)
    services.add_results(
        eval=e,
        results=[
            result(
                t, p, success=(t + p) % 3 == 0, named_scores={"acc": t / 10, "tone": p},
                error="boom" if (t + p) % 5 == 1 else "", failure_reason=2 if (t + p) % 5 == 1
                else None,
            )
            for t in range(12)
            for p in range(2)
        ],
    )  # fmt: skip
    for row in e.results.filter(test_idx__in=[2, 7]):  # ratings move results between outcomes
        services.rate_result(eval=e, result_id=row.pk, passed=not row.success, reason="flip")
    fresh = selectors.get_eval(e.id)
    selectors._FILTERED.clear()
    stored = selectors.eval_stats(eval=fresh, mode=mode)["prompts"]
    stats = selectors._stored_counts(e.id)
    summed = selectors._filtered_counts(
        build_filter(eval_id=e.id, mode=mode), selectors._score_keys(stats)
    )
    expected = selectors.prompt_heads(fresh, summed)
    assert rounded([p["metrics"] for p in stored]) == rounded([p["metrics"] for p in expected])
    assert sum(p["metrics"]["result_count"] for p in stored) > 0


def rounded(value):
    """Floats to 9 places, however deep: sums taken in another order differ in the last bit."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_a_passing_result_sent_with_a_failure_reason_counts_as_a_pass():
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[{**result(0, 0, success=True), "failureReason": 2}])
    assert e.results.get().failure_reason == 0
    fresh = selectors.get_eval(e.id)
    assert selectors.eval_stats(eval=fresh, mode="errors")["totals"]["result_count"] == 0
    assert selectors.eval_stats(eval=fresh, mode="passes")["totals"]["result_count"] == 1
