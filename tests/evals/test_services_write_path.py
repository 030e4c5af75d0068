"""add_results' bulk INSERT: the same column values the ORM would store, indexes in step."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from evals import prepare, search, services
from evals.models import EvalPromptStats, EvalResult
from tests.evals.factories import grid, make_eval, result

pytestmark = pytest.mark.django_db

COMPARED = [c for c in services.RESULT_COLUMNS if c not in ("eval_id", "created_at", "updated_at")]


def window(start: int, tests: int) -> list[dict]:
    return [result(t, p) for t in range(start, start + tests) for p in range(2)]


JSON_COLUMNS = {
    f.column for f in EvalResult._meta.concrete_fields if f.get_internal_type() == "JSONField"
}


def raw_rows(eval_id: str) -> list[tuple]:
    """Column values as stored, in test order; JSON text parsed with the standard library.

    Parsed, not compared as text: the batch INSERT writes compact UTF-8 JSON where Django
    writes `json.dumps`' spaced ASCII; both hold the same values.
    """
    columns = ", ".join(connection.ops.quote_name(c) for c in COMPARED)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {EvalResult._meta.db_table} WHERE eval_id = %s "
            "ORDER BY test_idx, prompt_idx",
            [eval_id],
        )
        return [
            tuple(
                json.loads(v) if c in JSON_COLUMNS and isinstance(v, str) else v
                for c, v in zip(COMPARED, row, strict=True)
            )
            for row in cursor.fetchall()
        ]


def orm_values(row: tuple) -> dict:
    """A prepared row as the model's field values (its JSON text parsed)."""
    json_columns = {prepare.ROW_COLUMNS[position] for position in prepare.JSON_POSITIONS}
    return {
        column: json.loads(value) if column in json_columns and value is not None else value
        for column, value in zip(prepare.ROW_COLUMNS, row, strict=True)
    }


def test_add_results_writes_every_result_column_but_the_id():
    concrete = {f.attname for f in EvalResult._meta.concrete_fields if not f.primary_key}
    assert set(services.RESULT_COLUMNS) == concrete
    assert len(services.RESULT_COLUMNS) == len(concrete)


def test_stored_columns_equal_what_bulk_create_stores():
    batch = [
        result(0, output='héllo ✓ "quoted"', named_scores={"clarity": 0.5}),
        result(1, 1, success=False, error="boom", failure_reason=2, components=[]),
        {"promptIdx": 0, "testIdx": 2, "vars": {"x": [1, 2.5, None]}, "success": True},
        {**result(3), "response": None, "gradingResult": None, "score": 0.125},
    ]
    written, by_orm = make_eval(), make_eval()
    services.add_results(eval=written, results=[dict(r) for r in batch])
    prompt_texts = dict(by_orm.eval_prompts.values_list("prompt_idx", "prompt_text_id"))
    rows = [orm_values(prepare.prepare_row(r, i)[0]) for i, r in enumerate(batch)]
    EvalResult.objects.bulk_create(
        [
            EvalResult(eval=by_orm, prompt_text_id=prompt_texts.get(row["prompt_idx"]), **row)
            for row in rows
        ]
    )
    assert raw_rows(written.id) == raw_rows(by_orm.id)
    nulls = EvalResult.objects.get(eval=written, test_idx=3)
    assert nulls.response is None and nulls.grading_result is None


@pytest.mark.parametrize(
    ("metadata", "stored"),
    [
        ({"pluginId": "Harmful:Hate", "strategyId": "Jailbreak", "severity": "HIGH"},
         ("harmful:hate", "jailbreak", "high")),
        ({"pluginId": "ÉCOLE", "severity": None}, ("école", None, "null")),
        ({"strategyId": 5, "severity": False, "pluginId": {"Name": "X"}},
         ('{"name":"x"}', "5", "false")),
        ({"other": "key"}, (None, None, None)),
        (None, (None, None, None)),
    ],
)  # fmt: skip
def test_the_red_team_keys_are_stored_lower_cased_in_columns_of_their_own(metadata, stored):
    e = make_eval(prompts=1)
    services.add_results(eval=e, results=[{**result(0), "metadata": metadata}])
    row = EvalResult.objects.get(eval=e)
    assert (row.meta_plugin_id, row.meta_strategy_id, row.meta_severity) == stored


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL indexes by itself")
def test_the_search_index_holds_each_batch_of_each_eval_exactly_once():
    first, second = make_eval(), make_eval()
    for start in (0, 3, 6):
        services.add_results(eval=first, results=window(start, 3))
        services.add_results(eval=second, results=window(start, 3))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {search.FTS_TABLE}")
        assert cursor.fetchone()[0] == EvalResult.objects.count() == 36
        cursor.execute(
            f"INSERT INTO {search.FTS_TABLE}({search.FTS_TABLE}) VALUES ('integrity-check')"
        )
    found = EvalResult.objects.filter(search.search_q("w8"), eval=second)
    assert sorted(found.values_list("prompt_idx", flat=True)) == [0, 1]


def test_a_sparse_resumed_batch_skips_exactly_the_stored_pairs():
    eval_ = make_eval()
    services.add_results(eval=eval_, results=[result(t, 0) for t in (0, 500, 1000)])
    outcome = services.add_results(
        eval=eval_, results=[result(t, p) for t in (0, 250, 500, 1000) for p in (0, 1)]
    )
    assert outcome == services.AddResultsOutcome(stored=5, skipped=3)
    assert EvalResult.objects.filter(eval=eval_).count() == 8
    eval_.refresh_from_db()
    assert eval_.test_count == 4


# As the API and the evaluator call it: outermost, its own transaction (inside a caller's,
# add_results takes no savepoint and the caller's transaction fails as a whole).
@pytest.mark.django_db(transaction=True)
def test_a_crash_after_the_insert_leaves_no_rows_no_index_and_the_old_aggregates(monkeypatch):
    eval_ = make_eval()
    services.add_results(eval=eval_, results=grid(2))

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_apply_contributions", crash)
    with pytest.raises(RuntimeError):
        services.add_results(eval=eval_, results=window(2, 2))
    assert EvalResult.objects.filter(eval=eval_).count() == 4
    assert EvalPromptStats.objects.get(eval=eval_, prompt_idx=0).result_count == 2
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {search.FTS_TABLE}")
            assert cursor.fetchone()[0] == 4


def test_results_for_a_prompt_index_beyond_the_prompts_get_a_stats_row():
    eval_ = make_eval(prompts=1)
    services.add_results(eval=eval_, results=[result(0, 3, named_scores={"m": 1.0})])
    services.add_results(eval=eval_, results=[result(1, 3, named_scores={"m": 0.5})])
    stats = EvalPromptStats.objects.get(eval=eval_, prompt_idx=3)
    assert (stats.result_count, stats.named_score_sums, stats.named_score_weights) == (
        2,
        {"m": 1.5},
        {"m": 2.0},
    )


@pytest.mark.parametrize(
    "value",
    [{}, {"a": []}, [], {"é✓": '\u2028 "q" \\ \n'}, {"f": [1e-07, 2.5, 10**30, -0.0]}, "s", 3],
)
def test_the_json_adapter_writes_what_django_would(value):
    written = services._json_adapter()(value)
    assert json.loads(written) == json.loads(json.dumps(value))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {services.json_placeholder()}", [written])
        stored = cursor.fetchone()[0]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT json_valid(%s)", [written])
            assert cursor.fetchone() == (1,)
    assert (json.loads(stored) if isinstance(stored, str) else stored) == json.loads(written)


def test_the_json_adapter_writes_valid_json_where_json_dumps_would_not():
    written = services._json_adapter()({"score": float("nan"), "big": 10**30, 1: "k"})
    assert json.loads(written) == {"score": None, "big": 10**30, "1": "k"}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {services.json_placeholder()}", [written])
        assert cursor.fetchone()[0] is not None


def flat_stats(eval_) -> dict[str, float]:
    """Every aggregate of the eval, per prompt and per outcome, as one flat mapping."""
    flat: dict[str, float] = {}

    def put(prefix: str, values: dict) -> None:
        for name, value in values.items():
            if isinstance(value, dict):
                put(f"{prefix}.{name}", value)
            elif isinstance(value, int | float):
                flat[f"{prefix}.{name}"] = value

    for row in EvalPromptStats.objects.filter(eval=eval_).values():
        prompt = row.pop("prompt_idx")
        row.pop("id"), row.pop("eval_id")
        put(f"prompt{prompt}", row)
    return flat


def test_a_resumed_batch_adds_to_the_aggregates_exactly_what_it_stores():
    results = [
        result(
            t, p, success=t % 3 != 0, error="boom" if t % 5 == 0 else None,
            named_scores={"acc": t / 10, f"m{p}": 1.0}, tokens={"total": t, "prompt": p},
        )
        for t in range(10)
        for p in range(2)
    ]  # fmt: skip
    once, resumed = make_eval(), make_eval()
    services.add_results(eval=once, results=results)
    services.add_results(eval=resumed, results=results[:7])  # stops half way through test 3
    # Everything again, and one pair twice within the batch: only the 13 missing are stored.
    outcome = services.add_results(eval=resumed, results=[*results, results[12]])
    assert outcome == services.AddResultsOutcome(stored=13, skipped=8)
    assert flat_stats(resumed) == pytest.approx(flat_stats(once))
    assert len(flat_stats(once)) > 100  # per prompt and per outcome, named scores included
