"""`python -m tests.bench.instructions`: the write path's cost a result, in instructions.

Seconds on a shared VM move ±20% (and more) from minute to minute; instruction counts do
not. Each part runs under `valgrind --tool=callgrind` twice, over 1 and over 1 + N batches
of 1,000 bench results, and the difference over N × 1,000 is its count a result: set-up
(Django, migrations, imports) cancels out. The parts:

- prepare: `evals.prepare.prepare_results` (the Python half of add_results);
- store: `evals.services.store_prepared` of prepared batches (the database half);
- baseline: the bench's bare executemany of the same rows into a copy of the table
  (tests.bench.ingest.Baseline), and again with the FTS5 index kept in step.

The ratio baseline ÷ (prepare + store) is add_results' figure in instructions. SQLite
only (PostgreSQL's work is in its server process). Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.bench.common import REPO, child_env, prompt_specs, result_batches

PARTS = ("prepare", "store", "baseline", "baseline-fts")
EVAL_ID = "eval-ins-2025-01-01T00:00:00"


def setup(home: Path) -> None:
    os.environ["ALCHEMY_HOME"] = str(home)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alchemy_site.settings")
    import django

    django.setup()


def prepare_inputs(work: Path, batches: int) -> None:
    """A migrated home holding the eval, and the batches (raw and as baseline rows)."""
    template = work / "home"
    template.mkdir(mode=0o700)
    setup(template)
    from django.core.management import call_command
    from django.db import connections

    from evals import services
    from tests.bench import ingest

    call_command("migrate", verbosity=0, interactive=False)
    services.create_eval(id=EVAL_ID, config={}, prompts=prompt_specs(), author="bench")
    raw = list(result_batches(batches * 250, seed=23))
    rows = [ingest.baseline_rows(EVAL_ID, batch) for batch in raw]
    (work / "inputs.pickle").write_bytes(pickle.dumps({"raw": raw, "rows": rows}))
    connections.close_all()  # the last connection folds the WAL in: the home copies whole


def child(work: Path, part: str, batches: int) -> None:
    """Run `part` over the first `batches` batches, in a scratch copy of the home."""
    home = work / f"run-{os.getpid()}"
    shutil.copytree(work / "home", home)
    setup(home)
    inputs = pickle.loads((work / "inputs.pickle").read_bytes())
    if part == "prepare":
        from evals.prepare import prepare_results

        for batch in inputs["raw"][:batches]:
            prepare_results(batch)
    elif part == "store":
        from evals import prepare, services
        from evals.models import Eval

        eval_ = Eval.objects.get(pk=EVAL_ID)
        # Every batch prepared in each run: only how many are stored differs between them.
        prepared = [prepare.prepare_results(batch) for batch in inputs["raw"]]
        for batch in prepared[:batches]:
            services.store_prepared(eval=eval_, batch=batch)
    else:
        from tests.bench import ingest
        from tests.bench.common import SCALES, Context

        ctx = Context(scale=SCALES["small"], home=home, vendor="sqlite")
        baseline = ingest.Baseline(ctx, text_index=part == "baseline-fts")
        for rows in inputs["rows"]:  # every batch's, in each run: what the bench leaves untimed
            baseline.add_parents(rows)
        for rows in inputs["rows"][:batches]:
            baseline.insert(rows, parents=False)
    shutil.rmtree(home)


def count(work: Path, part: str, batches: int) -> int:
    """Instructions callgrind counts for the child running `part` over `batches`."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "tests.bench.instructions", "--child", part, str(batches),
        "--work", str(work),
    ]  # fmt: skip
    # One BLAS thread (numpy's spin in wait, and how long varies) and one hash seed: without
    # them two runs of the same work differed by ~2,000 instructions a result.
    env = {**child_env(), "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind run of {part} failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.instructions", description=__doc__)
    parser.add_argument("--batches", type=int, default=8, help="batches of 1,000 measured")
    parser.add_argument("--child", nargs=2, metavar=("PART", "BATCHES"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.work, args.child[0], int(args.child[1]))
        return 0
    if os.environ.get("DATABASE_URL"):
        sys.exit("Instruction counts are taken on SQLite; unset DATABASE_URL.")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind).")
    work = Path(tempfile.mkdtemp(prefix="alchemy-instructions-"))
    try:
        prepare_inputs(work, args.batches + 1)
        jobs = [(part, n) for part in PARTS for n in (1, 1 + args.batches)]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counts = dict(zip(jobs, pool.map(lambda job: count(work, *job), jobs), strict=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = args.batches * 1000
    per = {part: (counts[(part, 1 + args.batches)] - counts[(part, 1)]) / results for part in PARTS}
    app = per["prepare"] + per["store"]
    lines = [f"instructions a result ({args.batches} batches of 1,000, callgrind):"]
    lines += [f"  {part:<13} {per[part]:>10,.0f}" for part in PARTS]
    lines.append(f"  {'add_results':<13} {app:>10,.0f}  (prepare + store)")
    lines.append(f"  baseline ÷ add_results: {per['baseline'] / app:.3f} "
                 f"(with the FTS5 index: {per['baseline-fts'] / app:.3f})")  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
