"""A free-text search starts from the FTS matches, not from every row of the eval."""

from __future__ import annotations

import pytest
from django.db import connection

from evals import selectors, services
from evals.filters import build_filter
from evals.models import EvalResult
from tests.evals.factories import make_eval, result

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="FTS5 is the SQLite search index")
def test_a_search_looks_up_the_fts_matches_by_primary_key():
    e = make_eval()
    q = build_filter(eval_id=e.id, search="needle")
    sql, params = EvalResult.objects.filter(q).values("test_idx").distinct().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        found = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "USING INTEGER PRIMARY KEY" in found


def test_a_search_keeps_to_its_eval():
    mine, other = make_eval(prompts=1), make_eval(prompts=1)
    for e in (mine, other):
        services.add_results(
            eval=e, results=[result(0, 0, output="a needle here"), result(1, 0, output="hay")]
        )
    page = selectors.table_page(eval=mine, search="needle")
    assert page["filtered_count"] == 1
    assert [row["outputs"][0]["id"] for row in page["body"]] == list(
        mine.results.filter(test_idx=0).values_list("id", flat=True)
    )
