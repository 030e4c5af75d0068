from __future__ import annotations

import pytest

from evals.evaluator.assertions import Context, grade, levenshtein, run_assertion
from prompts.embeddings import get_embedder

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}


def context(**overrides) -> Context:
    values = {
        "vars": {"expected": "world"}, "prompt": "p", "test": {}, "latency_ms": 120,
        "cost": 0.002, "embed": get_embedder().embed, "python_timeout_s": 10,
    }  # fmt: skip
    return Context(**{**values, **overrides})


def check(assertion: dict, output, **overrides) -> dict:
    return run_assertion(assertion, output, context(**overrides))


CASES = [
    ({"type": "equals", "value": "hello"}, "hello", True),
    ({"type": "equals", "value": "hello"}, "hello!", False),
    ({"type": "equals", "value": {"a": 1}}, '{"a": 1}', True),
    ({"type": "not-equals", "value": "hello"}, "bye", True),
    ({"type": "contains", "value": "{{expected}}"}, "hello world", True),
    ({"type": "contains", "value": "World"}, "hello world", False),
    ({"type": "not-contains", "value": "world"}, "hello world", False),
    ({"type": "icontains", "value": "WORLD"}, "hello world", True),
    ({"type": "not-icontains", "value": "WORLD"}, "hello", True),
    ({"type": "contains-any", "value": ["x", "world"]}, "hello world", True),
    ({"type": "contains-any", "value": "x, y"}, "hello world", False),
    ({"type": "not-contains-any", "value": ["x", "y"]}, "hello world", True),
    ({"type": "contains-all", "value": ["hello", "world"]}, "hello world", True),
    ({"type": "contains-all", "value": ["hello", "moon"]}, "hello world", False),
    ({"type": "not-contains-all", "value": ["hello", "moon"]}, "hello world", True),
    ({"type": "icontains-any", "value": ["MOON", "WORLD"]}, "hello world", True),
    ({"type": "icontains-all", "value": "HELLO, WORLD"}, "hello world", True),
    ({"type": "starts-with", "value": "hell"}, "hello", True),
    ({"type": "not-starts-with", "value": "hell"}, "hello", False),
    ({"type": "regex", "value": r"^h\w{4}$"}, "hello", True),
    ({"type": "not-regex", "value": r"\d+"}, "hello", True),
    ({"type": "is-json"}, '{"a": 1}', True),
    ({"type": "is-json"}, "not json", False),
    ({"type": "not-is-json"}, "not json", True),
    ({"type": "is-json", "value": SCHEMA}, '{"name": "Ada", "age": 36}', True),
    ({"type": "is-json", "value": SCHEMA}, '{"name": "Ada", "age": -1}', False),
    ({"type": "is-valid-json-schema", "value": SCHEMA}, '{"name": "Ada", "age": 3}', True),
    ({"type": "is-valid-json-schema", "value": SCHEMA}, '{"name": "Ada"}', False),
    ({"type": "contains-json"}, 'Sure: {"a": [1, 2]} done', True),
    ({"type": "contains-json"}, "no json { here", False),
    ({"type": "contains-json", "value": SCHEMA}, 'x {"b": 1} y {"name": "A", "age": 2}', True),
    ({"type": "contains-json", "value": SCHEMA}, 'x {"b": 1}', False),
    ({"type": "not-contains-json"}, "plain text", True),
    ({"type": "levenshtein", "value": "kitten", "threshold": 3}, "sitting", True),
    ({"type": "levenshtein", "value": "kitten", "threshold": 2}, "sitting", False),
    ({"type": "not-levenshtein", "value": "abc"}, "a completely different text", True),
    ({"type": "similar", "value": "the cat sat on the mat", "threshold": 0.8}, "the cat sat on the mat", True),
    ({"type": "similar", "value": ["zebra quantum", "cat sat mat"], "threshold": 0.5}, "the cat sat on the mat", True),
    ({"type": "similar", "value": "quantum chromodynamics lattice", "threshold": 0.5}, "the cat sat on the mat", False),
    ({"type": "not-similar", "value": "quantum chromodynamics", "threshold": 0.5}, "the cat sat", True),
    ({"type": "latency", "threshold": 200}, "x", True),
    ({"type": "latency", "threshold": 100}, "x", False),
    ({"type": "cost", "threshold": 0.01}, "x", True),
    ({"type": "cost", "threshold": 0.001}, "x", False),
    ({"type": "python", "value": "output.upper() == 'HELLO'"}, "hello", True),
    ({"type": "python", "value": "context['vars']['expected'] in output"}, "hello", False),
    ({"type": "not-python", "value": "len(output) > 10"}, "hello", True),
]  # fmt: skip


@pytest.mark.parametrize(("assertion", "output", "passes"), CASES)
def test_each_assertion_type_passes_and_fails_as_promptfoo_documents(assertion, output, passes):
    result = check(assertion, output)
    assert result["pass"] is passes, result["reason"]
    assert result["assertion"] is assertion
    if passes:
        assert result["reason"] == "Assertion passed"


def test_binary_assertions_score_one_or_zero():
    assert check({"type": "contains", "value": "a"}, "abc")["score"] == 1.0
    assert check({"type": "contains", "value": "z"}, "abc")["score"] == 0.0


def test_similar_scores_the_best_cosine_similarity():
    result = check({"type": "similar", "value": "the cat sat on the mat"}, "the cat sat on the mat")
    assert result["score"] == pytest.approx(1.0, abs=1e-5)


def test_a_cost_assertion_fails_when_the_provider_reports_no_cost():
    result = check({"type": "cost", "threshold": 1}, "x", cost=None)
    assert result["pass"] is False
    assert "no cost" in result["reason"]


def test_python_may_return_a_number_compared_with_the_threshold():
    assert check({"type": "python", "value": "0.4"}, "x")["pass"] is True  # > 0 without threshold
    result = check({"type": "python", "value": "len(output) / 10", "threshold": 0.5}, "abc")
    assert (result["pass"], result["score"]) == (False, pytest.approx(0.3))


def test_python_may_be_a_function_body_returning_a_grading_result():
    body = "words = output.split()\nreturn {'pass': len(words) == 2, 'score': 0.7, 'reason': 'two words'}"
    result = check({"type": "python", "value": body}, "hello world")
    assert (result["pass"], result["score"], result["reason"]) == (True, 0.7, "two words")


def test_python_may_call_a_function_in_a_file(tmp_path):
    module = tmp_path / "grader.py"
    module.write_text(
        "def get_assert(output, context):\n    print('noise on stdout is fine')\n"
        "    return output == context['vars']['expected']\n"
        "def strict(output, context):\n    return {'pass': False, 'score': 0.1, 'reason': 'too strict'}\n"
    )
    assert check({"type": "python", "value": f"file://{module}"}, "world")["pass"] is True
    result = check({"type": "python", "value": f"file://{module}:strict"}, "world")
    assert (result["pass"], result["reason"]) == (False, "too strict")


def test_python_errors_and_timeouts_fail_the_assertion_without_raising():
    result = check({"type": "python", "value": "1 / 0"}, "x")
    assert result["pass"] is False and "ZeroDivisionError" in result["reason"]
    result = check(
        {"type": "python", "value": "__import__('time').sleep(30)"}, "x", python_timeout_s=0.5
    )
    assert result["pass"] is False and "timed out" in result["reason"]
    result = check({"type": "python", "value": "'a string'"}, "x")
    assert result["pass"] is False and "must return" in result["reason"]


def test_the_score_is_the_weighted_mean_and_any_failure_fails_the_test():
    grading = grade(
        [
            {"type": "contains", "value": "a", "weight": 3},
            {"type": "contains", "value": "z", "weight": 1},
        ],
        "abc",
        context(),
    )
    assert grading["score"] == pytest.approx(0.75)
    assert grading["pass"] is False
    assert grading["reason"] == "Expected output to contain 'z'"
    assert [c["pass"] for c in grading["componentResults"]] == [True, False]


def test_a_test_threshold_decides_pass_from_the_score():
    asserts = [{"type": "contains", "value": "a", "weight": 3}, {"type": "contains", "value": "z"}]
    assert grade(asserts, "abc", context(), threshold=0.7)["pass"] is True
    low = grade(asserts, "abc", context(), threshold=0.8)
    assert low["pass"] is False
    assert low["reason"] == "Aggregate score 0.75 < 0.8 threshold"


def test_metrics_group_assertions_into_weighted_named_scores():
    grading = grade(
        [
            {"type": "contains", "value": "a", "metric": "accuracy", "weight": 3},
            {"type": "contains", "value": "z", "metric": "accuracy"},
            {"type": "starts-with", "value": "ab", "metric": "format"},
            {"type": "contains", "value": "b"},
        ],
        "abc",
        context(),
    )
    assert grading["namedScores"] == {"accuracy": pytest.approx(0.75), "format": 1.0}
    assert grading["score"] == pytest.approx(5 / 6)


def test_no_assertions_means_a_pass_with_full_score():
    grading = grade([], "anything", context())
    assert (grading["pass"], grading["score"], grading["reason"]) == (True, 1.0, "No assertions")


def test_zero_weights_do_not_divide_by_zero():
    grading = grade([{"type": "contains", "value": "a", "weight": 0}], "abc", context())
    assert (grading["pass"], grading["score"]) == (True, 1.0)


def test_levenshtein_distance_is_the_classic_edit_distance():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("same", "same") == 0
