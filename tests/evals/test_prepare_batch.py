"""evals.prepare's batch-at-a-time shortcuts give exactly what one result at a time gives.

`prepare_results` groups, sums and searches whole columns of a batch (tests.bench counts
the instructions it saves); each test here builds the same answer the plain way, one result
after another, from random batches, and compares.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from evals import prepare
from evals.facts import _counts, as_count
from evals.prepare import (
    PROMPT_IDX,
    TEST_IDX,
    Contribution,
    contribution_of_prepared,
    prepare_results,
    prepare_row,
)

texts = st.text(alphabet="abZ é:/,;64", max_size=8)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False, width=32), texts
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=2), st.dictionaries(texts, scalars, max_size=2)
)
counts = st.one_of(
    st.integers(-2, 5), st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 10**40]),
    st.floats(allow_nan=True), st.booleans(), st.none(), texts,
)  # fmt: skip


@st.composite
def results(draw) -> dict:
    result = {
        "promptIdx": draw(st.integers(0, 2)),
        "testIdx": draw(st.integers(0, 3)),  # small: pairs repeat within a batch
        "success": draw(st.booleans()),
        "score": draw(st.one_of(st.floats(-2, 2), st.integers(0, 1))),
        "latencyMs": draw(st.integers(0, 50)),
        "cost": draw(st.one_of(st.floats(0, 1), st.integers(0, 2), st.none())),
    }
    if draw(st.booleans()):
        result["failureReason"] = draw(st.sampled_from([0, 1, 2]))
    if draw(st.booleans()):
        result["error"] = draw(texts)
    if draw(st.booleans()):
        result["namedScores"] = draw(st.dictionaries(st.sampled_from("abc"), scalars, max_size=3))
    if draw(st.booleans()):
        result["testCase"] = {"vars": draw(values)}
    elif draw(st.booleans()):
        result["vars"] = draw(st.dictionaries(st.sampled_from(["q", "topic"]), values, max_size=2))
    if draw(st.booleans()):
        result["output"] = draw(values)  # promptfoo's older results hold it here
    if draw(st.booleans()):
        usage = draw(st.dictionaries(st.sampled_from(
            ["prompt", "completion", "total", "cached", "numRequests"]), counts))  # fmt: skip
        result["response"] = {"output": draw(values), "tokenUsage": usage}
    if draw(st.booleans()):
        result["gradingResult"] = {
            "reason": draw(values),
            "componentResults": [{"pass": draw(scalars)} for _ in range(draw(st.integers(0, 2)))],
        }
    if draw(st.booleans()):
        keys = st.sampled_from(["pluginId", "strategyId", "severity", "other"])
        result["metadata"] = draw(st.dictionaries(keys, values, max_size=3))
    return result


def one_at_a_time(batch: list[dict]) -> tuple[list, dict, list, int]:
    """prepare_results' rows, per-outcome aggregates, var names and repeats, the plain way."""
    rows, pairs, aggregates, var_names = [], set(), {}, {}
    for index, result in enumerate(batch):
        row, _named, vars_ = prepare_row(result, index)
        if (row[TEST_IDX], row[PROMPT_IDX]) in pairs:
            continue
        pairs.add((row[TEST_IDX], row[PROMPT_IDX]))
        rows.append(row)
        aggregates.setdefault(row[PROMPT_IDX], Contribution()).add(contribution_of_prepared(row))
        for name in vars_:
            var_names.setdefault(name)
    by_outcome = {idx: c.by_outcome for idx, c in aggregates.items()}
    return rows, by_outcome, list(var_names), len(batch) - len(rows)


@settings(max_examples=300, deadline=None)
@given(st.lists(results(), max_size=12))
def test_a_batch_prepares_as_its_results_do_one_at_a_time(batch):
    prepared = prepare_results(batch)
    rows, by_outcome, var_names, repeated = one_at_a_time(batch)
    assert prepared.rows == rows
    assert {idx: c.by_outcome for idx, c in prepared.aggregates.items()} == by_outcome
    assert prepared.var_names == var_names
    assert prepared.repeated == repeated


def searched_one_at_a_time(response, vars_, grading, metadata, error) -> str:
    """search_text as its docstring says, a value at a time."""
    parts = []

    def add(value):
        if value is not None:
            parts.append(value if isinstance(value, str) else prepare._encode(value))

    def add_values(found):
        if isinstance(found, dict):
            found = list(found.values())
        for value in found if isinstance(found, list) else [found]:
            add(value)

    if isinstance(response, dict):
        add(response.get("output"))
    add_values(vars_)
    if isinstance(grading, dict):
        add(grading.get("reason"))
    add_values(metadata)
    text = prepare._DATA_URL_PAYLOAD.sub(r"\1…", " ".join(parts))
    if error:
        text = f"{text} {error}" if parts else error
    return text.lower()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.dictionaries(st.just("output"), values)), values,
    st.one_of(st.none(), st.dictionaries(st.just("reason"), values)), values,
    st.one_of(st.none(), texts),
)  # fmt: skip
def test_the_search_text_is_each_value_in_turn(response, vars_, grading, metadata, error):
    found = prepare.search_text(
        response=response, vars_=vars_, grading_result=grading, metadata=metadata, error=error
    )
    assert found == searched_one_at_a_time(response, vars_, grading, metadata, error)


def test_a_data_url_payload_is_left_out_of_the_search_text():
    image = "data:image/png;base64,iVBORw0KGgo="
    found = prepare.search_text(
        response={"output": "See"}, vars_={"img": image}, grading_result=None, metadata=None,
        error=None,
    )  # fmt: skip
    assert found == "see data:image/png;base64,…"


@given(st.tuples(counts, counts, counts, counts, counts))
def test_token_counts_are_each_values_count(values):
    found = _counts(*values)
    assert found == tuple(map(as_count, values))
    assert all(type(n) is int for n in found)


def test_named_scores_add_numbers_in_order_and_skip_the_rest():
    part = Contribution()
    prepare._add_named_scores(
        part, [{"a": 0.1, "b": True}, {"a": 2, "b": "x"}, {}, {"a": 0.2, "b": None}]
    )
    assert part.named_score_sums == {"a": (0.1 + 2.0) + 0.2}
    assert part.named_score_weights == {"a": 3.0}
    assert math.isclose(part.named_score_sums["a"], 2.3)


def test_a_named_score_that_json_cannot_hold_adds_nothing():
    """NaN and infinities (which the stored JSON holds as null) and integers beyond any
    float: an import reads them from promptfoo's file, and they must not poison the sums."""
    part = Contribution()
    prepare._add_named_scores(
        part, [{"a": 0.5, "b": math.inf}, {"a": math.nan, "b": 1.0}, {"a": 10**400, "b": 2}]
    )
    assert part.named_score_sums == {"a": 0.5, "b": 3.0}
    assert part.named_score_weights == {"a": 1.0, "b": 2.0}
