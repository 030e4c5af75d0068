"""The per-result numbers the write path stores next to the JSON they come from."""

from __future__ import annotations

import pytest

from evals import selectors, services
from evals.facts import FACT_COLUMNS, result_facts
from tests.evals.factories import make_eval, result


def facts(response, grading) -> dict[str, int]:
    return dict(zip(FACT_COLUMNS, result_facts(response, grading), strict=True))


def test_it_counts_components_and_tokens_as_promptfoo_does():
    found = facts(
        {"tokenUsage": {"prompt": 2, "completion": 3.0, "total": 5, "cached": 1, "numRequests": 2}},
        {"componentResults": [{"pass": True}, {"pass": 0}, {}, "junk"],
         "tokensUsed": {"prompt": 7, "completion": 1, "total": 8, "cached": 0}},
    )  # fmt: skip
    assert found == {
        "assert_pass_count": 1, "assert_fail_count": 2,
        "token_prompt": 2, "token_completion": 3, "token_total": 5, "token_cached": 1,
        "token_num_requests": 2, "assert_token_prompt": 7, "assert_token_completion": 1,
        "assert_token_total": 8, "assert_token_cached": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "usage", [None, "lots", {"total": "12", "prompt": True, "completion": float("nan")}]
)
def test_what_is_not_a_number_counts_as_zero_and_a_call_is_one_request(usage):
    found = facts({"tokenUsage": usage} if usage is not None else None, {"tokensUsed": []})
    assert found["token_num_requests"] == 1
    assert sum(v for k, v in found.items() if k != "token_num_requests") == 0


def test_an_absurd_count_is_clamped_into_a_64_bit_column():
    assert facts({"tokenUsage": {"total": 10**40}}, None)["token_total"] == 2**53


def rounded(value):
    """Floats to 9 places, all the way down (sums in another order differ in the last bits)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 9) if isinstance(value, float) else value


@pytest.mark.django_db
def test_a_filter_matching_everything_sums_to_the_stored_aggregates():
    e = make_eval(prompts=2)
    services.add_results(
        eval=e,
        results=[
            result(t, p, success=(t + p) % 3 != 0, named_scores={"acc": t / 10},
                   tokens={"total": t + 1, "prompt": t, "completion": 1, "cached": p,
                           "numRequests": 1 + p},
                   components=[{"pass": True}, {"pass": t % 2 == 0}])
            for t in range(6) for p in range(2)
        ],
    )  # fmt: skip
    everything = [{"type": "metric", "field": "acc", "operator": "gte", "value": 0}]
    filtered = selectors.eval_stats(eval=selectors.get_eval(e.id), filters=everything)
    stored = selectors.eval_stats(eval=selectors.get_eval(e.id))
    assert filtered["filtered"] and not stored["filtered"]
    for mine, theirs in zip(filtered["prompts"], stored["prompts"], strict=True):
        assert rounded(mine["metrics"]) == rounded(theirs["metrics"])


@pytest.mark.django_db
def test_a_rating_rewrites_the_results_assertion_counts():
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(0, 0, success=False)])
    row = e.results.get()
    assert (row.assert_pass_count, row.assert_fail_count) == (0, 1)
    services.rate_result(eval=e, result_id=row.pk, passed=True)
    row.refresh_from_db()
    assert (row.assert_pass_count, row.assert_fail_count) == (1, 1)
    failures = selectors.eval_stats(eval=selectors.get_eval(e.id), mode="passes")
    assert failures["prompts"][0]["metrics"]["assert_pass_count"] == 1


def test_a_batchs_aggregates_are_its_results_contributions_added_one_by_one():
    from evals.prepare import Contribution, contribution_of_prepared, prepare_results

    batch = [
        result(0, 0, score=0.1, latency_ms=7, cost=0.3, named_scores={"acc": 0.1}),
        result(0, 1, success=False, score=0.2, cost=0.1, tokens={"prompt": 3, "total": 9}),
        {**result(1, 0, success=False, score=0.7), "failureReason": 0},  # a fail, reason 0
        result(1, 1, success=False, error="boom", failure_reason=2, components=[]),
        result(2, 0, score=1e-17, cost=1e16, named_scores={"acc": 0.3, "tone": 2}),
        {**result(2, 1, success=False, score=0.3), "failureReason": 1},
        result(3, 0, score=0.7, cost=0.1, named_scores={"acc": 0.2}),
    ]
    prepared = prepare_results(batch)
    expected: dict[int, Contribution] = {}
    for row in prepared.rows:  # each outcome's part, row by row in the batch's order
        expected.setdefault(row[0], Contribution()).add(contribution_of_prepared(row))
    assert {p: c.by_outcome for p, c in prepared.aggregates.items()} == {
        p: c.by_outcome for p, c in expected.items()
    }
    assert set(prepared.aggregates[0].by_outcome) == {"pass", "fail"}
    assert prepared.aggregates[0].by_outcome["fail"].fail_count == 1
