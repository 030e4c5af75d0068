"""An eval test by test — did every prompt pass, the mean score — for comparing evals.

Reading it walks every result of the eval (about a second per million on SQLite: the
rows are wide and each is read whole), so it is stored as a snapshot when the eval
completes (`store`, called by services.complete_eval) and compared evals read that
instead of their results. A snapshot names the eval version it was taken at; after a
change (a manual rating, results added on resume) it is stale, read around, and
replaced the next time the eval is read test by test while it is not running.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import Avg, IntegerField, Min
from django.db.models.functions import Cast

from evals.models import Eval, EvalOutcomes, EvalResult, EvalStatus


@dataclass(frozen=True)
class TestOutcomes:
    """One eval, test by test: whether every prompt passed, and the mean score."""

    tests: np.ndarray  # test indices, ascending (int64)
    passed: np.ndarray  # bool
    score: np.ndarray  # float64


def version_of(eval_: Eval) -> str:
    """What changes whenever the eval's results or ratings do."""
    return f"{eval_.last_written_at}|{eval_.updated_at}|{eval_.test_count}"


def read(eval_: Eval) -> TestOutcomes:
    """The eval's snapshot when it is current, else its results read test by test (and a
    snapshot stored of them when the eval is no longer running)."""
    version = version_of(eval_)
    stored = EvalOutcomes.objects.filter(eval_id=eval_.id, version=version).first()
    if stored is not None:
        return TestOutcomes(
            tests=np.frombuffer(bytes(stored.tests), dtype="<i8"),
            passed=np.frombuffer(bytes(stored.passed), dtype=np.bool_),
            score=np.frombuffer(bytes(stored.score), dtype="<f8"),
        )
    outcomes = _from_results(eval_.id)
    if eval_.status != EvalStatus.RUNNING:
        _save(eval_.id, version, outcomes)
    return outcomes


def store(eval_id: str) -> None:
    """Take the eval's snapshot now (from the database's current state of it)."""
    eval_ = (
        Eval.objects.filter(pk=eval_id)
        .only("id", "status", "last_written_at", "updated_at", "test_count")
        .first()
    )
    if eval_ is not None:
        _save(eval_.id, version_of(eval_), _from_results(eval_.id))


FETCH_CHUNK = 10_000


def _from_results(eval_id: str) -> TestOutcomes:
    query = (
        EvalResult.objects.filter(eval_id=eval_id)
        .order_by("test_idx")
        .values("test_idx")
        .annotate(passed=Min(Cast("success", IntegerField())), score=Avg("score"))
        .values_list("test_idx", "passed", "score")
    )
    sql, params = query.query.sql_with_params()
    chunks = []
    # In chunks: 250,000 rows as Python tuples were ~40 MB at once (an import's peak). On
    # PostgreSQL through a server-side cursor (Django's chunked_cursor, as for iterator()):
    # a client-side one receives every row at execute (the 1M import's peak: 170 → 220 MB).
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_CHUNK):
            chunks.append(np.array(rows, dtype=np.float64).reshape(-1, 3))
    columns = np.concatenate(chunks) if chunks else np.zeros((0, 3))
    return TestOutcomes(
        tests=columns[:, 0].astype(np.int64),
        passed=columns[:, 1] > 0,
        score=np.nan_to_num(columns[:, 2]),
    )


def _save(eval_id: str, version: str, outcomes: TestOutcomes) -> None:
    EvalOutcomes.objects.update_or_create(
        eval_id=eval_id,
        defaults={
            "version": version,
            "tests": outcomes.tests.astype("<i8").tobytes(),
            "passed": outcomes.passed.astype(np.bool_).tobytes(),
            "score": outcomes.score.astype("<f8").tobytes(),
        },
    )
