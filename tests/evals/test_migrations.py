"""Migrations keep and complete the rows they find."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from evals.facts import FACT_COLUMNS

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets: list[tuple[str, str]]):
    """Migrate to `targets`; the apps (historical models) as of there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def leaves() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture(autouse=True)
def back_to_latest():
    yield
    migrate(leaves())


def test_the_fact_columns_are_filled_for_results_stored_before_them():
    old = migrate([("evals", "0005_result_filter_indexes")])
    evaluation = old.get_model("evals", "Eval").objects.create(
        id="eval-old-2025-01-01T00:00:00", created_at=timezone.now()
    )
    Result = old.get_model("evals", "EvalResult")
    Result.objects.create(
        eval=evaluation, prompt_idx=0, test_idx=0,
        response={"output": "hi", "tokenUsage": {"prompt": 3, "completion": 4, "total": 7,
                                                 "cached": 1, "numRequests": 2}},
        grading_result={"componentResults": [{"pass": True}, {"pass": False}, {"pass": 1}],
                        "tokensUsed": {"prompt": 5, "completion": 6, "total": 11}},
    )  # fmt: skip
    Result.objects.create(eval=evaluation, prompt_idx=0, test_idx=1, response=None)

    new = migrate(leaves())

    rows = new.get_model("evals", "EvalResult").objects.order_by("test_idx")
    assert [list(values) for values in rows.values_list(*FACT_COLUMNS)] == [
        [2, 1, 3, 4, 7, 1, 2, 5, 6, 11, 0],
        [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    ]


def test_the_fact_columns_migration_reverses():
    migrate([("evals", "0005_result_filter_indexes")])
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(
            cursor, "evals_evalresult")}  # fmt: skip
        indexes = connection.introspection.get_constraints(cursor, "evals_evalresult")
    assert not columns & set(FACT_COLUMNS)
    assert "result_eval_success_cover" not in indexes and "result_eval_success_test" in indexes


@pytest.mark.skipif(connection.vendor != "sqlite", reason="FTS5 is the SQLite search index")
def test_the_search_index_is_rebuilt_without_positions_and_finds_older_rows():
    from evals import search
    from evals.models import EvalResult

    old = migrate([("evals", "0006_result_facts")])
    evaluation = old.get_model("evals", "Eval").objects.create(
        id="eval-fts-2025-01-01T00:00:00", created_at=timezone.now()
    )
    old.get_model("evals", "EvalResult").objects.create(
        eval=evaluation, prompt_idx=0, test_idx=0, response={"output": "an old zebracorn"}
    )
    with connection.cursor() as cursor:  # 0006 indexed nothing itself: the writer did
        cursor.execute("INSERT INTO evals_result_fts(evals_result_fts) VALUES ('rebuild')")

    migrate(leaves())

    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'evals_result_fts'")
        assert "detail=none" in cursor.fetchone()[0]
    found = EvalResult.objects.filter(search.search_q("old zebracorn"))
    assert list(found.values_list("test_idx", flat=True)) == [0]
    migrate([("evals", "0006_result_facts")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'evals_result_fts'")
        assert "detail=full" in cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM evals_result_fts WHERE evals_result_fts MATCH 'zebracorn'"
        )
        assert cursor.fetchone() == (1,)


def test_older_results_get_their_search_text_and_are_found_by_their_values():
    from evals import search
    from evals.models import EvalResult

    old = migrate([("evals", "0010_eval_outcomes")])
    evaluation = old.get_model("evals", "Eval").objects.create(
        id="eval-txt-2025-01-01T00:00:00", created_at=timezone.now()
    )
    old.get_model("evals", "EvalResult").objects.create(
        eval=evaluation, prompt_idx=0, test_idx=0, response={"output": "An Old Zebracorn"},
        test_case={"vars": {"animal": "okapi"}}, metadata={"pluginId": "pii:direct"},
        grading_result={"reason": "Looks fine"}, error="",
    )  # fmt: skip

    migrate(leaves())

    row = EvalResult.objects.get(eval_id=evaluation.id)
    assert row.search_text == "an old zebracorn okapi looks fine pii:direct"
    for needle, found in (("old zebracorn", [0]), ("OKAPI", [0]), ("animal", [])):
        rows = EvalResult.objects.filter(search.search_q(needle))
        assert list(rows.values_list("test_idx", flat=True)) == found
    migrate([("evals", "0010_eval_outcomes")])  # and back: the old index again
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM evals_result_fts WHERE evals_result_fts MATCH %s",
                [search.fts_query("okapi")],
            )
            assert cursor.fetchone() == (1,)
        else:
            indexes = connection.introspection.get_constraints(cursor, "evals_evalresult")
            assert "result_search_trgm" in indexes and "result_search_text_trgm" not in indexes


def test_per_outcome_stats_are_filled_from_the_stored_results():
    from evals import selectors, services
    from tests.evals.factories import make_eval, result

    eval_ = make_eval(prompts=1)
    services.add_results(
        eval=eval_,
        results=[
            result(0, named_scores={"acc": 1.0}),
            result(1, success=False, named_scores={"acc": 0.25}),
            result(2, success=False, error="boom", failure_reason=2),
        ],
    )
    written = selectors._stored_counts(eval_.id)[0]["by_outcome"]
    old = migrate([("evals", "0008_drop_indexes_the_unique_one_serves")])
    # Stored before 0009: a pass with a failure reason, as older writers could leave one.
    old.get_model("evals", "EvalResult").objects.filter(test_idx=0).update(failure_reason=2)

    migrate(leaves())

    assert selectors._stored_counts(eval_.id)[0]["by_outcome"] == written
    assert set(written) == {"pass", "fail", "error"}
    assert written["fail"]["named_score_sums"] == {"acc": 0.25}
    assert eval_.results.get(test_idx=0).failure_reason == 0
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "evals_evalresult")
    assert "result_eval_success_cover" not in indexes


def test_older_results_get_their_red_team_key_columns_and_reversing_keeps_the_filters():
    from evals import selectors
    from evals.models import EvalResult

    old = migrate([("evals", "0011_result_search_values")])
    evaluation = old.get_model("evals", "Eval").objects.create(
        id="eval-key-2025-01-01T00:00:00", created_at=timezone.now()
    )
    Result = old.get_model("evals", "EvalResult")
    metadata = [
        {"pluginId": "Harmful:Hate", "strategyId": "Jailbreak", "severity": "HIGH"},
        {"pluginId": "ÉCOLE", "severity": None, "other": "x"},
        {"strategyId": 5, "severity": True},
        {},
    ]
    for test_idx, meta in enumerate(metadata):
        Result.objects.create(eval=evaluation, prompt_idx=0, test_idx=test_idx, metadata=meta)

    migrate(leaves())

    rows = EvalResult.objects.filter(eval_id=evaluation.id).order_by("test_idx")
    assert list(rows.values_list("meta_plugin_id", "meta_strategy_id", "meta_severity")) == [
        ("harmful:hate", "jailbreak", "high"),
        ("école", None, "null"),
        (None, "5", "true"),
        (None, None, None),
    ]
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "evals_evalresult")
    assert {"result_plugin_test", "result_strategy_test", "result_severity_test"} <= set(indexes)
    assert "result_meta_plugin_test" not in indexes

    migrate([("evals", "0011_result_search_values")])  # and back: the expression indexes
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(
            cursor, "evals_evalresult")}  # fmt: skip
        indexes = connection.introspection.get_constraints(cursor, "evals_evalresult")
    assert "meta_plugin_id" not in columns
    assert "result_meta_plugin_test" in indexes and "result_plugin_test" not in indexes
    migrate(leaves())
    page = selectors.table_page(
        eval=selectors.get_eval(evaluation.id), filters=[{"type": "plugin", "value": "harmful"}]
    )
    assert [row["test_idx"] for row in page["body"]] == [0]
