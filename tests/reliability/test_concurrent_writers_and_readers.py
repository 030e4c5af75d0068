"""4 writer processes add results while 8 reader processes page through tables.

Afterwards: no process saw an error (\"database is locked\" included), every result is
stored exactly once, the kept aggregates equal a recomputation from the rows, and
`db integrity-check` is clean. Runs on SQLite and, with DATABASE_URL, on PostgreSQL.
Short version here (4 × 500, 4 readers); `--run-slow` does the issue's 4 × 50,000.
"""

from __future__ import annotations

import json
import secrets
import sys

import pytest

from tests.procs import start_django
from tests.reliability.conftest import ProcDb

BATCH = 500
WRITER = """
import json, sys, time, traceback
from evals import services
from evals.models import Eval
from tests.evals.factories import result
eval_id, first, count, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
eval_ = Eval.objects.get(pk=eval_id)
stored, errors, started = 0, [], time.monotonic()
for start in range(first, first + count, batch):
    rows = [
        result(t, t % 2, success=t % 3 != 0, score=(t % 7) / 7, latency_ms=t % 50,
               named_scores={"quality": (t % 5) / 5}, metadata={"pluginId": f"p{t % 4}"})
        for t in range(start, min(start + batch, first + count))
    ]
    try:
        stored += services.add_results(eval=eval_, results=rows).stored
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"stored": stored, "errors": errors, "seconds": time.monotonic() - started}))
"""
READER = """
import json, random, sys, time
from pathlib import Path
from evals import selectors
from evals.models import Eval
stop, ids = Path(sys.argv[1]), sys.argv[2].split(",")
pages, errors = 0, []
rng = random.Random(sys.argv[3])
while not stop.exists() or pages == 0:
    eval_ = Eval.objects.get(pk=rng.choice(ids))
    try:
        mode = rng.choice(["all", "all", "failures", "passes"])
        filters = rng.choice(["", json.dumps([{"type": "plugin", "operator": "equals", "value": "p1"}])])
        page = selectors.table_page(eval=eval_, offset=rng.randrange(0, 2000, 50), limit=50,
                                    mode=mode, filters=filters)
        selectors.eval_stats(eval=eval_, mode=mode)
        pages += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        if len(errors) > 20:
            break
print(json.dumps({"pages": pages, "errors": errors}))
"""
SETUP = """
import json, sys
from tests.evals.factories import make_eval
for eval_id in sys.argv[1].split(","):
    make_eval(id=eval_id)
print(json.dumps({}))
"""
VERIFY = """
import json, sys
from django.db.models import Count, Q, Sum
from evals.models import Eval, EvalPromptStats, EvalResult
out = {}
for eval_id in sys.argv[1].split(","):
    rows = EvalResult.objects.filter(eval_id=eval_id)
    recomputed = {
        r["prompt_idx"]: r for r in rows.order_by().values("prompt_idx").annotate(
            n=Count("id"), passes=Count("id", filter=Q(success=True)), latency=Sum("latency_ms"), score=Sum("score"))
    }
    mismatches = []
    for s in EvalPromptStats.objects.filter(eval_id=eval_id):
        r = recomputed.get(s.prompt_idx, {"n": 0, "passes": 0, "latency": 0, "score": 0.0})
        got = (s.result_count, s.pass_count, s.latency_sum_ms, round(s.score_sum, 6))
        want = (r["n"], int(r["passes"] or 0), int(r["latency"] or 0), round(r["score"] or 0.0, 6))
        if got != want:
            mismatches.append([s.prompt_idx, got, want])
    pairs = rows.values("test_idx", "prompt_idx").distinct().count()
    out[eval_id] = {
        "rows": rows.count(), "distinct": pairs, "mismatches": mismatches,
        "test_count": Eval.objects.get(pk=eval_id).test_count,
    }
print(json.dumps(out))
"""


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run_writers_and_readers(
    proc_db: ProcDb, tmp_path, *, per_writer: int, shared: bool, readers: int = 8
) -> None:
    tag = secrets.token_hex(3)
    ids = (
        [f"eval-w{tag}-2025-01-01T00:00:00"]
        if shared
        else [f"eval-w{tag}-2025-01-01T00:00:0{i}" for i in range(4)]
    )
    proc_db.run(SETUP.replace("sys.argv[1]", repr(",".join(ids))))
    stop = tmp_path / f"stop-{tag}"
    env = proc_db.env

    def child(body: str, *argv: str):
        proc = start_django(
            f"import sys; sys.argv[1:] = {list(argv)!r}\n" + body, proc_db.home, **env
        )
        return proc

    writers = [
        child(WRITER, ids[0 if shared else i], str(i * per_writer), str(per_writer), str(BATCH))
        for i in range(4)
    ]
    reading = [child(READER, str(stop), ",".join(ids), str(i)) for i in range(readers)]
    outcomes = []
    for proc in writers:
        out, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, err[-3000:]
        outcomes.append(last_json(out))
    stop.touch()
    reads = []
    for proc in reading:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        reads.append(last_json(out))
    verified = proc_db.run(VERIFY.replace("sys.argv[1]", repr(",".join(ids))))
    check = proc_db.integrity_check()

    total = 4 * per_writer
    slowest = max(o["seconds"] for o in outcomes)
    sys.stdout.write(
        f"\n[{proc_db.vendor}] 4 writers × {per_writer:,} results "
        f"({'one eval' if shared else 'separate evals'}) with {readers} readers: "
        f"{sum(o['stored'] for o in outcomes):,}/{total:,} stored, "
        f"{sum(len(o['errors']) for o in outcomes)} writer errors, "
        f"{sum(r['pages'] for r in reads):,} table pages read, "
        f"{sum(len(r['errors']) for r in reads)} reader errors, "
        f"{total / slowest:,.0f} results/s overall; integrity-check: {check.strip().splitlines()[-1]}\n"
    )
    assert [o["errors"] for o in outcomes] == [[]] * 4
    assert [r["errors"] for r in reads] == [[]] * readers
    assert sum(o["stored"] for o in outcomes) == total
    for eval_id, got in verified.items():
        expected = total if shared else per_writer
        assert (got["rows"], got["distinct"], got["mismatches"]) == (expected, expected, []), (
            eval_id
        )
        assert got["test_count"] == expected


@pytest.mark.parametrize("shared", [True, False], ids=["one-eval", "separate-evals"])
def test_four_writers_and_four_readers_lose_nothing_and_see_no_errors(proc_db, tmp_path, shared):
    run_writers_and_readers(proc_db, tmp_path, per_writer=500, shared=shared, readers=4)


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["one-eval", "separate-evals"])
def test_four_writers_of_fifty_thousand_results_each_lose_nothing(proc_db, tmp_path, shared):
    run_writers_and_readers(proc_db, tmp_path, per_writer=50_000, shared=shared)
