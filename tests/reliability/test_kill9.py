"""kill -9 an import and a running `manage.py eval` at random points.

After every kill: `db integrity-check` passes, the aggregates equal a recomputation from
the stored rows (they are written in the same transaction as each batch, so a half batch
would show here), an import is all-or-nothing (one transaction per eval), and the work
can be finished: the import re-run (with --force if it had committed), the eval resumed
with `--resume`. Kill points are counted in progress lines, never in sleeps.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys

import pytest

from tests.procs import REPO, django_env
from tests.reliability.conftest import ProcDb

RECOMPUTE = """
import json
from django.db.models import Count, Q, Sum
from evals.models import Eval, EvalPromptStats, EvalResult
out = {}
for eval_ in Eval.objects.filter(pk__startswith=PREFIX):
    rows = EvalResult.objects.filter(eval=eval_)
    sums = {r["prompt_idx"]: r for r in rows.order_by().values("prompt_idx").annotate(
        n=Count("id"), passes=Count("id", filter=Q(success=True)), latency=Sum("latency_ms"))}
    bad = []
    for s in EvalPromptStats.objects.filter(eval=eval_):
        r = sums.get(s.prompt_idx, {"n": 0, "passes": 0, "latency": 0})
        if (s.result_count, s.pass_count, s.latency_sum_ms) != (r["n"], r["passes"] or 0, r["latency"] or 0):
            bad.append(s.prompt_idx)
    out[eval_.id] = {"rows": rows.count(), "status": eval_.status, "bad_stats": bad,
                     "distinct": rows.values("test_idx", "prompt_idx").distinct().count()}
print(json.dumps(out))
"""


def start(proc_db: ProcDb, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), *args], cwd=REPO,
        env=django_env(proc_db.home, PYTHONUNBUFFERED="1", **proc_db.env), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, bufsize=1,
    )  # fmt: skip


def kill_after(proc: subprocess.Popen, lines: int, marker: str) -> list[str]:
    """Read stdout until `lines` lines containing `marker`, then SIGKILL; returns what was read."""
    seen, read = 0, []
    for line in proc.stdout:
        read.append(line)
        if marker in line:
            seen += 1
            if seen >= lines:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    return read


def state(proc_db: ProcDb, prefix: str) -> dict:
    return proc_db.run(f"PREFIX = {prefix!r}\n" + RECOMPUTE)


def write_jsonl(path, eval_id: str, tests: int) -> None:
    from tests.evals.factories import result

    with path.open("w") as handle:
        for t in range(tests):
            for p in range(2):
                row = result(t, p, success=(t + p) % 3 != 0, latency_ms=t % 40)
                handle.write(json.dumps({"evalId": eval_id, **row}) + "\n")


def kill_imports(proc_db: ProcDb, tmp_path, *, kills: int, tests: int) -> None:
    rng = random.Random()
    tag = f"{rng.randrange(16**4):04x}"
    eval_id = f"eval-k{tag}-2025-01-01T00:00:00"
    path = tmp_path / "big.jsonl"
    write_jsonl(path, eval_id, tests)
    log = []
    for _ in range(kills):
        lines = rng.randint(1, 2)
        proc = start(proc_db, "import_promptfoo", str(path), "--force")
        read = kill_after(proc, lines, "results (")
        proc_db.integrity_check()
        found = state(proc_db, eval_id).get(eval_id)
        finished = any("Imported" in line for line in read)
        log.append(f"kill after {lines} progress lines: {found['rows'] if found else 0} rows")
        # All or nothing: an interrupted import leaves no eval; a finished one all of it.
        if found is None:
            assert not finished
        else:
            assert (found["rows"], found["bad_stats"]) == (tests * 2, []), found
    result = proc_db.manage("import_promptfoo", str(path), "--force")
    assert result.returncode == 0, result.stderr[-2000:]
    final = state(proc_db, eval_id)[eval_id]
    assert (final["rows"], final["distinct"], final["bad_stats"]) == (tests * 2, tests * 2, [])
    proc_db.integrity_check()
    sys.stdout.write(
        f"\n[{proc_db.vendor}] import of {tests * 2:,} results killed -9 {kills}×: "
        + "; ".join(log)
        + f"; integrity-check clean each time; re-import stored {final['rows']:,}\n"
    )


CONFIG = """
description: kill -9 target
prompts:
  - "A: {{{{n}}}}"
  - "B: {{{{n}}}}"
providers:
  - echo
tests:
{tests}
"""


def kill_evals(proc_db: ProcDb, tmp_path, *, kills: int, tests: int) -> None:
    rng = random.Random()
    config = tmp_path / "kill.yaml"
    body = "\n".join(
        f"  - vars: {{n: '{i}'}}\n    assert: [{{type: contains, value: '{i if i % 4 else 'x'}'}}]"
        for i in range(tests)
    )
    config.write_text(CONFIG.format(tests=body))
    log, eval_id = [], None
    for _ in range(kills):
        decile = rng.randint(1, 8)
        args = ["--resume", eval_id] if eval_id else [str(config)]
        proc = start(proc_db, "eval", *args, "-j", "2")
        read = kill_after(proc, decile, "/")
        if eval_id is None:
            started = [line for line in read if line.startswith("Eval ")]
            assert started, read
            eval_id = started[0].split()[1]
        proc_db.integrity_check()
        found = state(proc_db, eval_id)[eval_id]
        assert found["bad_stats"] == [] and found["rows"] == found["distinct"], found
        log.append(f"kill at progress line {decile}: {found['rows']} stored")
    result = proc_db.manage("eval", "--resume", eval_id, "-j", "2")
    assert result.returncode in (0, 100), result.stdout[-1000:] + result.stderr[-2000:]
    final = state(proc_db, eval_id)[eval_id]
    assert final["rows"] == final["distinct"] == tests * 2, final
    assert final["bad_stats"] == [] and final["status"] == "complete"
    proc_db.integrity_check()
    sys.stdout.write(
        f"\n[{proc_db.vendor}] eval of {tests * 2:,} results killed -9 {kills}×: "
        + "; ".join(log)
        + f"; resumed to {final['rows']:,}, aggregates equal a recomputation\n"
    )


def test_an_import_killed_at_random_points_leaves_a_sound_database(proc_db, tmp_path):
    kill_imports(proc_db, tmp_path, kills=2, tests=2_000)


def test_an_eval_killed_at_random_points_resumes_to_the_full_result(proc_db, tmp_path):
    kill_evals(proc_db, tmp_path, kills=2, tests=120)


@pytest.mark.slow
def test_ten_kills_of_an_import_and_of_an_eval_leave_everything_sound(proc_db, tmp_path):
    kill_imports(proc_db, tmp_path, kills=10, tests=30_000)
    kill_evals(proc_db, tmp_path, kills=10, tests=2_000)
