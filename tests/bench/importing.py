"""Import of promptfoo JSON exports in a subprocess: results/s and peak RSS (VmHWM)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import ijson

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


def run_import(path: Path, log_path: Path) -> tuple[float, int, float, dict, int]:
    """Seconds, peak RSS in bytes, when the peak was reached (seconds in), the RSS parts
    then (KiB) and the bytes it had written by its last sample, of `manage.py
    import_promptfoo PATH --new-id`.

    The peak is the child's VmHWM, read from /proc until it exits. Not ru_maxrss: a forked
    child's maximum counts the parent's pages from before exec (the bench holds ~1 GB by
    then), which made every import look as big as the bench itself.
    """
    started = time.perf_counter()
    peak_kib = 0
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "import_promptfoo", str(path), "--new-id",
             "--verbosity", "0"],
            cwd=REPO, env=child_env(), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        status = Path(f"/proc/{process.pid}/status")
        io = Path(f"/proc/{process.pid}/io")
        peak_at, parts, written = 0.0, {}, 0
        while process.poll() is None:
            written = max(written, bytes_written(io))
            fields = status_kib(status)
            if fields.get("VmHWM", 0) > peak_kib:
                peak_kib, peak_at = fields["VmHWM"], time.perf_counter() - started
                parts = {k: v for k, v in fields.items() if k.startswith("Rss")}
            time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"import_promptfoo failed ({process.returncode}); see {log_path}")
    return elapsed, peak_kib * 1024, peak_at, parts, written


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
    """The process's VmHWM and Rss* lines (KiB): its peak, and what its memory is now."""
    found = {}
    try:
        for line in status.read_text().splitlines():
            if line.startswith(("VmHWM:", "RssAnon:", "RssFile:", "RssShmem:")):
                name, value = line.split(":", 1)
                found[name] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return found


def measure_imports(ctx: Context) -> None:
    peaks: dict[int, int] = {}
    for count in (ctx.scale.import_small, ctx.scale.import_large):
        path = ctx.home / f"promptfoo-export-{count}.json"
        size = write_export(path, count)
        log(f"import: wrote {size / 1e6:,.0f} MB export of {count:,} results; importing")
        seconds, peak, peak_at, parts, written = run_import(path, ctx.home / "import.log")
        path.unlink()
        peaks[count] = peak
        rate = count / seconds
        ctx.add(Figure("import", f"import promptfoo JSON, {count:,} results", rate, "results/s",
                       "≥ 20,000/s", ok=rate >= 20_000,
                       detail={"seconds": round(seconds, 2), "file_mb": round(size / 1e6, 1),
                               "peak_rss_mb": round(peak / 2**20, 1),
                               "ijson_backend": ijson.backend_name}))  # fmt: skip
        if ctx.vendor == "sqlite":  # PostgreSQL's server writes the rows, not the command
            ctx.add(Figure("import", f"import bytes written, {count:,} results", written / 1e6,
                           "MB", "report"))  # fmt: skip
        ctx.add(Figure("import", f"import peak RSS, {count:,} results", peak / 2**20, "MB",
                       "≤ 300", ok=peak / 2**20 <= 300,
                       detail={"peak_reached_at_s": round(peak_at, 1),
                               "import_s": round(seconds, 1),
                               **{f"{k}_mb_at_peak": round(v / 1024, 1)
                                  for k, v in parts.items()}}))  # fmt: skip
    small, large = peaks[ctx.scale.import_small], peaks[ctx.scale.import_large]
    ctx.add(Figure("import", "peak RSS, large import ÷ small import", large / small, "×",
                   "≤ 1.2 (streaming)", ok=large / small <= 1.2,
                   detail={"small": ctx.scale.import_small,
                           "large": ctx.scale.import_large}))  # fmt: skip
