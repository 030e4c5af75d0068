"""Each filter's page is a walk of an index, in test order."""

from __future__ import annotations

import pytest
from django.db import connection

from evals import selectors, services
from evals.filters import build_filter
from evals.models import EvalResult
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the plans are SQLite's (EXPLAIN QUERY PLAN)"
)


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


def page_indices(eval_id: str, **kwargs) -> str:
    q = build_filter(eval_id=eval_id, **kwargs)
    return plan(
        EvalResult.objects.filter(q).order_by("test_idx").values_list("test_idx").distinct()[:50]
    )


@sqlite_only
@pytest.mark.parametrize(
    ("filters", "index", "column"),
    [
        (
            [{"type": "metadata", "field": "pluginId", "value": "pii:direct"}],
            "result_plugin_test",
            "meta_plugin_id",
        ),
        ([{"type": "plugin", "value": "harmful"}], "result_plugin_test", "meta_plugin_id"),
        ([{"type": "strategy", "value": "jailbreak"}], "result_strategy_test", "meta_strategy_id"),
        ([{"type": "severity", "value": "HIGH"}], "result_severity_test", "meta_severity"),
    ],
)
def test_red_team_filters_walk_their_key_column_index(filters, index, column):
    e = make_eval()
    assert f"COVERING INDEX {index} (eval_id=? AND {column}" in page_indices(e.id, filters=filters)


@sqlite_only
@pytest.mark.parametrize(
    ("mode", "index"),
    [("failures", "result_eval_success_test"), ("passes", "result_eval_success_test"),
     ("errors", "result_eval_failure_test")],
)  # fmt: skip
def test_mode_pages_walk_a_covering_index_in_test_order(mode, index):
    e = make_eval()
    found = page_indices(e.id, mode=mode)
    assert f"COVERING INDEX {index}" in found
    assert "TEMP B-TREE" not in found


def test_a_plugin_family_matches_its_members_and_not_lookalikes():
    e = make_eval(prompts=1)
    plugins = ["harmful", "harmful:hate", "Harmful:Violent", "harmfulness", "harmful;x", "other"]
    services.add_results(
        eval=e, results=[result(t, 0, metadata={"pluginId": p}) for t, p in enumerate(plugins)]
    )
    page = selectors.table_page(eval=e, filters=[{"type": "plugin", "value": "HARMFUL"}])
    assert [row["test_idx"] for row in page["body"]] == [0, 1, 2]
    assert page["filtered_count"] == 3


@pytest.mark.parametrize("mode", ["failures", "passes", "errors"])
def test_the_stats_of_one_outcome_read_no_result(mode):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    e = make_eval()
    services.add_results(eval=e, results=[result(0, 0, success=False), result(1, 0)])
    selectors._FILTERED.clear()
    with CaptureQueriesContext(connection) as captured:
        selectors.eval_stats(eval=selectors.get_eval(e.id), mode=mode)
    sums = [q["sql"] for q in captured if "SUM(" in q["sql"].upper()]
    assert sums == []
