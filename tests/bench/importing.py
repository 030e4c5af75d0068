"""Import of promptfoo JSON exports in a subprocess: results/s and peak memory of its processes."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.common import REPO, Context, Figure, child_env, log, prompt_specs, result_batches


def write_export(path: Path, results: int) -> int:
    """A promptfoo v3 export (`promptfoo export` / `eval -o x.json`), written streaming."""
    tests = results // len(prompt_specs())
    prompts = [{**p, "provider": p["provider"]["id"]} for p in prompt_specs()]
    with path.open("w", encoding="utf-8") as out:
        out.write('{"evalId": "eval-bch-2025-01-01T00:00:00", "config": {"description": ')
        out.write(json.dumps(f"bench import of {results:,} results"))
        out.write('}, "metadata": {"author": "bench", "evaluationCreatedAt": '
                  '"2025-01-01T00:00:00Z"}, "results": {"version": 3, "timestamp": '
                  '"2025-01-01T00:00:00Z", "prompts": ')  # fmt: skip
        out.write(json.dumps(prompts))
        out.write(', "results": [')
        first = True
        for batch in result_batches(tests, seed=17):
            for result in batch:
                out.write(("" if first else ",\n") + json.dumps(result))
                first = False
        out.write('], "stats": {"successes": 0, "failures": 0}}}')
    return path.stat().st_size


@dataclass
class ImportRun:
    seconds: float
    peak_rss: int  # bytes: the highest sum of the import's processes' resident sets
    peak_pss: int  # bytes: the same for their proportional sets (shared pages split)
    peak_at: float  # seconds in
    parts: dict[str, int]  # the command's RSS parts (KiB) at the peak
    processes: int  # the most processes seen at once (the command and its reader)
    written: int  # bytes the command wrote by its last sample, its readers' writes left out


def run_import(path: Path, log_path: Path, **env: str) -> ImportRun:
    """`manage.py import_promptfoo PATH --new-id`, sampled from /proc until it exits.

    The import runs as two processes (the command and the reader it forks, evals.forked),
    so memory is summed over the command and its children at each sample: their resident
    sets (pages they share counted in each: an upper bound) and their proportional sets
    (shared pages split between them). Not ru_maxrss: a forked child's maximum counts the
    parent's pages from before exec (the bench holds ~1 GB by then).
    """
    started = time.perf_counter()
    run = ImportRun(0.0, 0, 0, 0.0, {}, 0, 0)
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "import_promptfoo", str(path), "--new-id",
             "--verbosity", "0"],
            cwd=REPO, env={**child_env(), **env}, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        samples = 0
        # A reaped child's I/O counts as its parent's from then on: the readers' writes
        # (the pipe to the command, mostly) are taken out of the command's again.
        readers_wrote: dict[int, int] = {}
        while process.poll() is None:
            command_wrote = bytes_written(Path(f"/proc/{process.pid}/io"))
            pids = process_tree(process.pid)
            for pid in pids[1:]:
                readers_wrote[pid] = bytes_written(Path(f"/proc/{pid}/io")) or readers_wrote.get(
                    pid, 0
                )
            reaped = sum(wrote for pid, wrote in readers_wrote.items() if pid not in pids)
            run.written = max(run.written, command_wrote - reaped)
            run.processes = max(run.processes, len(pids))
            rss = sum(status_kib(Path(f"/proc/{pid}/status")).get("VmRSS", 0) for pid in pids)
            if rss * 1024 > run.peak_rss:
                run.peak_rss, run.peak_at = rss * 1024, time.perf_counter() - started
                status = status_kib(Path(f"/proc/{process.pid}/status"))
                run.parts = {k: v for k, v in status.items() if k.startswith("Rss")}
            if samples % 4 == 0:  # reading smaps costs the box more than status does
                run.peak_pss = max(run.peak_pss, 1024 * sum(pss_kib(pid) for pid in pids))
            samples += 1
            time.sleep(0.05)
    run.seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"import_promptfoo failed ({process.returncode}); see {log_path}")
    return run


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants that are alive now."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):  # it ended meanwhile
                pending.extend(int(child) for child in task.read_text().split())
    return found


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def bytes_written(io: Path) -> int:
    """What the process has written so far (`wchar`: to files, the database's included)."""
    try:
        for line in io.read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def status_kib(status: Path) -> dict[str, int]:
    """The process's VmRSS, VmHWM and Rss* lines (KiB): what its memory is now."""
    found = {}
    try:
        for line in status.read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:", "RssShmem:")):
                name, value = line.split(":", 1)
                found[name] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return found


# The 100,000-result import is timed this many times (the median is the figure): one
# import is a single sample, and this machine's speed moves ±20% from minute to minute.
SMALL_IMPORT_RUNS = 3


def measure_imports(ctx: Context) -> None:
    peaks: dict[int, int] = {}
    for count in (ctx.scale.import_small, ctx.scale.import_large):
        path = ctx.home / f"promptfoo-export-{count}.json"
        size = write_export(path, count)
        log(f"import: wrote {size / 1e6:,.0f} MB export of {count:,} results; importing")
        times = SMALL_IMPORT_RUNS if count == ctx.scale.import_small else 1
        runs = [run_import(path, ctx.home / "import.log") for _ in range(times)]
        run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
        # Both bounds on the cautious side: the highest peak against 300 MB, the lowest
        # as the small import's in the streaming ratio.
        peaks[count] = min(r.peak_rss for r in runs)
        rate = count / run.seconds
        ctx.add(Figure("import", f"import promptfoo JSON, {count:,} results", rate, "results/s",
                       "≥ 20,000/s", ok=rate >= 20_000,
                       detail={"seconds": round(run.seconds, 2), "file_mb": round(size / 1e6, 1),
                               "processes": run.processes,
                               "runs_seconds": [round(r.seconds, 2) for r in runs]}))  # fmt: skip
        if ctx.vendor == "sqlite":  # PostgreSQL's server writes the rows, not the command
            ctx.add(Figure("import", f"import bytes written, {count:,} results",
                           run.written / 1e6, "MB", "report"))  # fmt: skip
        peak = max(runs, key=lambda r: r.peak_rss)
        ctx.add(Figure("import", f"import peak RSS, {count:,} results (all its processes)",
                       peak.peak_rss / 2**20, "MB", "≤ 300", ok=peak.peak_rss / 2**20 <= 300,
                       detail={"peak_pss_mb": round(peak.peak_pss / 2**20, 1),
                               "processes": peak.processes,
                               "peak_reached_at_s": round(peak.peak_at, 1),
                               "import_s": round(peak.seconds, 1),
                               **{f"command_{k}_mb_at_peak": round(v / 1024, 1)
                                  for k, v in peak.parts.items()}}))  # fmt: skip
        if count == ctx.scale.import_small:
            # The same file read and written in turn by one process: what the reader
            # process the command forks (evals.forked) buys.
            alone = run_import(path, ctx.home / "import.log", ALCHEMY_IMPORT_READER_PROCESS="0")
            ctx.add(Figure("import", f"import promptfoo JSON, {count:,} results, one process",
                           count / alone.seconds, "results/s", "report",
                           detail={"seconds": round(alone.seconds, 2)}))  # fmt: skip
        path.unlink()
    small, large = peaks[ctx.scale.import_small], peaks[ctx.scale.import_large]
    ctx.add(Figure("import", "peak RSS, large import ÷ small import", large / small, "×",
                   "≤ 1.2 (streaming)", ok=large / small <= 1.2,
                   detail={"small": ctx.scale.import_small,
                           "large": ctx.scale.import_large}))  # fmt: skip
