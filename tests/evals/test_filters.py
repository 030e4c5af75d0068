from __future__ import annotations

import json

import pytest

from alchemy_site.errors import Invalid
from evals import services
from evals.filters import build_filter
from evals.models import EvalResult
from evals.selectors import eval_stats, table_page
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db


@pytest.fixture
def eval_():
    e = make_eval(prompts=2)
    meta = [
        {"pluginId": "harmful:hate", "strategyId": "jailbreak", "severity": "HIGH", "k": "present"},
        {"pluginId": "harmful", "strategyId": "base64", "severity": "low", "k": ""},
        {"pluginId": "pii:direct", "strategyId": "jailbreak", "severity": "medium", "k": "   "},
        {"pluginId": "harmfulness", "k": None, "n": 5},
        {"k": [], "n": 12},
        {"k": {}, "n": 7.5},
    ]
    batch = []
    for t, m in enumerate(meta):
        batch.append(
            result(
                t,
                0,
                success=t % 2 == 0,
                metadata=m,
                output=f"answer {t}",
                named_scores={"acc": t / 10},
            )
        )
        batch.append(
            result(
                t,
                1,
                success=True,
                metadata=m,
                output=f"answer {t}" if t < 4 else "other",
                named_scores={"acc": 1.0},
            )
        )
    batch[10] = result(
        5,
        0,
        success=False,
        error="timeout talking to provider",
        failure_reason=2,
        components=[],
        metadata=meta[5],
        output="x",
    )
    batch[3]["gradingResult"]["comment"] = "!highlight this one"
    services.add_results(eval=e, results=batch)
    return e  # fmt: skip


def matching_tests(eval_, **kwargs) -> list[int]:
    q = build_filter(eval_id=eval_.id, **kwargs)
    return sorted(set(EvalResult.objects.filter(q).values_list("test_idx", flat=True)))


def f(type_, operator, value=None, field="k", logic="and"):
    return {"type": type_, "field": field, "operator": operator, "value": value, "logic": logic}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("all", [0, 1, 2, 3, 4, 5]),
        ("passes", [0, 1, 2, 3, 4, 5]),
        ("failures", [1, 3]),
        ("errors", [5]),
        ("highlights", [1]),
        ("different", [4, 5]),
    ],
)
def test_each_mode_selects_its_rows(eval_, mode, expected):
    assert matching_tests(eval_, mode=mode) == expected


def test_user_rated_mode_finds_human_ratings(eval_):
    row = EvalResult.objects.get(eval=eval_, test_idx=2, prompt_idx=1)
    services.rate_result(eval=eval_, result_id=row.pk, passed=False, reason="no")
    assert matching_tests(eval_, mode="user-rated") == [2]


def test_an_unknown_mode_is_invalid(eval_):
    with pytest.raises(Invalid):
        build_filter(eval_id=eval_.id, mode="sideways")


def test_exists_skips_empty_whitespace_missing_and_null_but_not_empty_containers(eval_):
    assert matching_tests(eval_, filters=[f("metadata", "exists")]) == [0, 4, 5]
    assert matching_tests(eval_, filters=[f("metadata", "not_exists")]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (f("metadata", "equals", "PRESENT"), [0]),
        (f("metadata", "not_equals", "present"), [1, 2, 3, 4, 5]),
        (f("metadata", "contains", "RES"), [0]),
        (f("metadata", "not_contains", "res"), [1, 2, 3, 4, 5]),
        (f("metadata", "gt", 7, field="n"), [4, 5]),
        (f("metadata", "gte", 7.5, field="n"), [4, 5]),
        (f("metadata", "lt", 7.5, field="n"), [3]),
        (f("metadata", "lte", 7.5, field="n"), [3, 5]),
        (f("metric", "gte", 0.3, field="acc"), [0, 1, 2, 3, 4, 5]),
        (f("metric", "lt", 0.3, field="acc"), [0, 1, 2]),
        (f("metric", "equals", 0.2, field="acc"), [2]),
        (f("plugin", "equals", "harmful"), [0, 1]),
        (f("plugin", "equals", "HARMFUL:hate"), [0]),
        (f("plugin", "not_equals", "harmful"), [2, 3, 4, 5]),
        (f("strategy", "equals", "Jailbreak"), [0, 2]),
        (f("severity", "equals", "high"), [0]),
        (f("severity", "contains", "ED"), [2]),
    ],
)
def test_each_operator(eval_, flt, expected):
    assert matching_tests(eval_, filters=[flt]) == expected


def test_or_really_means_or_and_binds_looser_than_and(eval_):
    either = [f("severity", "equals", "high"), f("severity", "equals", "low", logic="OR")]
    assert matching_tests(eval_, filters=json.dumps(either)) == [0, 1]
    mixed = [
        f("strategy", "equals", "jailbreak"),
        f("severity", "equals", "medium", logic="and"),
        f("metadata", "gt", 10, field="n", logic="or"),
    ]
    assert matching_tests(eval_, filters=mixed) == [2, 4]


@pytest.mark.parametrize(
    "field",
    ["k') OR 1=1 --", 'k"; DROP TABLE evals_evalresult; --', "$.k", "a__b", "k\\", "0"],
)
def test_injection_shaped_field_names_are_just_names(eval_, field):
    for operator in ("equals", "exists", "gt", "contains"):
        assert matching_tests(eval_, filters=[f("metadata", operator, "1", field=field)]) == []
    assert EvalResult.objects.filter(eval=eval_).count() == 12


def test_search_covers_output_vars_reason_and_metadata(eval_):
    assert matching_tests(eval_, search="answer 3") == [3]
    assert matching_tests(eval_, search="W4") == [4]
    assert matching_tests(eval_, search="timeout talking") == [5]
    assert matching_tests(eval_, search="pii:dir") == [2]
    assert matching_tests(eval_, search="zz") == []
    assert matching_tests(eval_, search="%") == []
    assert matching_tests(eval_, search='"; --') == []


def test_search_looks_in_the_values_of_vars_and_metadata_not_their_keys():
    e = make_eval(prompts=1)
    services.add_results(
        eval=e,
        results=[
            result(0, vars={"question": 'say "hi"\nthen go'}, metadata={"severity": "high"}),
            result(1, vars={"n": 42, "flag": True, "nested": {"deep": "inner"}}),
        ],
    )
    assert matching_tests(e, search="question") == []  # a key, in every row that has it
    assert matching_tests(e, search="severity") == []
    assert matching_tests(e, search='say "hi"') == [0]  # no JSON escapes in the way
    assert matching_tests(e, search='hi"\nthen') == [0]
    assert matching_tests(e, search="HIGH") == [0]
    assert matching_tests(e, search="42 true") == [1]
    assert matching_tests(e, search="inner") == [1]  # a nested value, as its JSON text


def test_search_leaves_out_the_payload_of_an_image_in_a_var():
    e = make_eval(prompts=1)
    image = "data:image/png;base64," + "QUJD" * 50_000  # 200 KB, as a vision eval's var
    services.add_results(eval=e, results=[result(0, vars={"image": image, "q": "what is it"})])
    stored = EvalResult.objects.get(eval=e)
    assert stored.test_case["vars"]["image"] == image  # the row keeps it
    assert stored.search_text == "ok data:image/png;base64,… what is it assertion passed"
    assert matching_tests(e, search="QUJDQUJD") == []
    assert matching_tests(e, search="image/png") == [0]


def test_search_follows_a_rating_and_a_delete(eval_):
    row = EvalResult.objects.get(eval=eval_, test_idx=0, prompt_idx=0)
    services.rate_result(eval=eval_, result_id=row.pk, passed=False, reason="quixotic verdict")
    assert matching_tests(eval_, search="quixotic") == [0]
    services.delete_eval(eval=eval_)
    other = make_eval()
    services.add_results(eval=other, results=[result(0, output="fresh words")])
    assert matching_tests(other, search="fresh") == [0]


@pytest.mark.parametrize("bad", ['{"type": "nope"}', "[1]", '[{"type": "metadata"}]', "{"])
def test_malformed_filters_are_invalid(eval_, bad):
    with pytest.raises(Invalid):
        build_filter(eval_id=eval_.id, filters=bad)


def test_filtered_stats_equal_the_filtered_pages_rows(eval_):
    flt = [f("strategy", "equals", "jailbreak")]
    stats = eval_stats(eval=eval_, filters=flt)
    page = table_page(eval=eval_, filters=flt, limit=500)
    assert page["filtered_count"] == 2
    assert sum(p["metrics"]["result_count"] for p in stats["prompts"]) == 2 * 2 - 0
    assert [m["result_count"] for m in page["filtered_metrics"]] == [2, 2]
    assert stats["prompts"][1]["metrics"]["named_scores"] == {"acc": 1.0}


def test_unfiltered_stats_come_from_aggregates_without_scanning(eval_, django_assert_num_queries):
    with django_assert_num_queries(2):
        stats = eval_stats(eval=eval_)
    assert stats["prompts"][0]["metrics"]["result_count"] == 6


def test_deep_pages_on_sparse_indices_are_correct():
    e = make_eval(prompts=1)
    for start in range(0, 3000, 1000):
        services.add_results(eval=e, results=[result(t * 3, 0) for t in range(start, start + 1000)])
    page = table_page(eval=e, offset=2990, limit=20)
    assert [row["test_idx"] for row in page["body"]] == [t * 3 for t in range(2990, 3000)]
    assert page["total_count"] == 3000
    failures = table_page(eval=e, offset=0, limit=5, mode="failures")
    assert failures["body"] == [] and failures["filtered_count"] == 0


def test_deep_pages_on_dense_indices_are_arithmetic(django_assert_max_num_queries):
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[result(t, 0) for t in range(2000)])
    with django_assert_max_num_queries(5):
        page = table_page(eval=e, offset=1995, limit=10)
    assert [row["test_idx"] for row in page["body"]] == [1995, 1996, 1997, 1998, 1999]


@pytest.mark.parametrize("key", ["it's 100%", "%s", "a'b%%c", 'with "quotes"'])
def test_metric_keys_with_quotes_and_percent_signs_filter_and_sum(key):
    e = make_eval(prompts=1)
    services.add_results(
        eval=e,
        results=[result(t, 0, named_scores={key: t / 4, "other": 9}) for t in range(4)],
    )
    flt = [{"type": "metric", "field": key, "operator": "gte", "value": 0.5}]
    page = table_page(eval=e, filters=flt)
    assert [row["test_idx"] for row in page["body"]] == [2, 3]
    assert page["filtered_metrics"][0]["named_scores"] == {key: 0.625, "other": 9.0}


def test_search_matches_the_needle_not_just_its_trigrams():
    e = make_eval(prompts=1)
    outputs = ["abcd xbcde", "abcde", "Déjà VU ÉCOLE", 'tick "quoted" tock', "z" * 40 + "end"]
    services.add_results(eval=e, results=[result(t, output=o) for t, o in enumerate(outputs)])
    # "abcde"'s trigrams abc, bcd, cde are all in test 0, but never in a row.
    assert matching_tests(e, search="abcde") == [1]
    assert matching_tests(e, search="bcd") == [0, 1]
    assert matching_tests(e, search="école") == [2]
    assert matching_tests(e, search='"quoted" to') == [3]
    # More trigrams than the index is asked about: the check still wants the whole needle.
    assert matching_tests(e, search="z" * 30 + "end") == [4]
    assert matching_tests(e, search="z" * 30 + "enx") == []


@pytest.mark.parametrize(
    ("spec", "found"),
    [
        ({"type": "plugin", "value": "école"}, [0]),
        ({"type": "plugin", "value": "ÉCOLE", "operator": "contains"}, [0]),
        ({"type": "metadata", "field": "pluginId", "value": "CoLe", "operator": "contains"}, [0]),
        ({"type": "severity", "value": "null"}, [1]),
        ({"type": "severity", "value": "true"}, [2]),
        ({"type": "strategy", "value": "5"}, [2]),
        ({"type": "strategy", "value": "5", "operator": "not_equals"}, [0, 1, 3]),
        ({"type": "severity", "value": "null", "operator": "not_contains"}, [0, 2, 3]),
    ],
)  # fmt: skip
def test_red_team_filters_match_any_case_and_any_json_value(spec, found):
    e = make_eval(prompts=1)
    metadata = [
        {"pluginId": "ÉCOLE", "strategyId": "Jailbreak"},
        {"severity": None},
        {"strategyId": 5, "severity": True},
        {},
    ]
    services.add_results(eval=e, results=[result(t, metadata=m) for t, m in enumerate(metadata)])
    page = table_page(eval=e, filters=[spec])
    assert [row["test_idx"] for row in page["body"]] == found


def test_an_errors_text_is_searched_as_it_is_after_the_rest():
    e = make_eval(prompts=1)
    image = "data:image/png;base64," + "QUJD" * 10
    services.add_results(
        eval=e,
        results=[result(0, vars={"image": image}, success=False, error=f"Bad {image}",
                        failure_reason=2, components=[])],
    )  # fmt: skip
    stored = EvalResult.objects.get(eval=e)
    assert stored.search_text == f"ok data:image/png;base64,… assertion failed bad {image.lower()}"
