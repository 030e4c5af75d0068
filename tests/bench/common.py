"""Shared pieces: scales, timing statistics, figures, realistic results, the server."""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROMPT_COUNT = 4
MARKER = "zephyrine"  # the free-text search needle: in about 1 output in 200


@dataclass(frozen=True)
class Scale:
    name: str
    tests: int  # the big eval has tests × 4 prompts results
    deep_offset: int  # "page at test offset 200,000"
    failures_offset: int  # the failures-mode deep page
    ingest_batches: int  # batches of 1,000 through add_results (and the baseline)
    http_batches: int  # batches of 1,000 through POST /api/evals/{id}/results
    prompts: int  # semantic search corpus
    import_small: int
    import_large: int
    live_rounds: int
    budget_seconds: float  # per measured read: repeat until this much time is spent


SCALES = {
    "full": Scale("full", 250_000, 200_000, 100_000, 100, 20, 100_000, 100_000, 1_000_000, 40, 3.0),
    "small": Scale("small", 5_000, 4_000, 2_000, 10, 5, 10_000, 20_000, 100_000, 12, 0.6),
}


@dataclass
class Figure:
    """One row of the report. `ok` is None for figures that only report."""

    group: str
    name: str
    value: float
    unit: str
    target: str
    baseline: float | None = None
    ratio: float | None = None
    ok: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timing:
    samples: list[float]  # seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000

    def summary(self) -> dict[str, float]:
        return {"median_ms": round(self.median_ms, 3), "p95_ms": round(self.p95_ms, 3),
                "n": len(self.samples)}  # fmt: skip


def repeat(
    call: Callable[[], Any],
    *,
    budget: float,
    least: int = 7,
    most: int = 300,
    setup: Callable[[], Any] | None = None,
) -> Timing:
    """Time `call` after one warm-up, until `budget` seconds or `most` runs (≥ `least`).

    `setup` runs, untimed, before every call (the warm-up's too): how a figure is taken
    cold, e.g. by emptying a cache the call would otherwise hit from its second run on.
    """
    prepare = setup or (lambda: None)
    prepare()
    call()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < most and (len(samples) < least or time.perf_counter() - started < budget):
        prepare()
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return Timing(samples)


def repeat_alternately(
    first: Callable[[], Any],
    second: Callable[[], Any],
    *,
    budget: float,
    least: int = 7,
    most: int = 300,
) -> tuple[Timing, Timing]:
    """Time two calls turn about (after a warm-up of each), so a noisy spell on a shared
    machine slows both alike: for a figure that is a ratio of the two."""
    first()
    second()
    samples: tuple[list[float], list[float]] = ([], [])
    started = time.perf_counter()
    while len(samples[0]) < most and (
        len(samples[0]) < least or time.perf_counter() - started < 2 * budget
    ):
        for call, taken in ((first, samples[0]), (second, samples[1])):
            t0 = time.perf_counter()
            call()
            taken.append(time.perf_counter() - t0)
    return Timing(samples[0]), Timing(samples[1])


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --- realistic results ------------------------------------------------------------------

PLUGINS = (
    "harmful:hate", "harmful:violent-crime", "harmful:self-harm", "pii:direct", "pii:session",
    "bola", "bfla", "sql-injection", "shell-injection", "hijacking", "excessive-agency",
    "contracts", "politics", "overreliance", "hallucination", "imitation", "rbac", "ssrf",
    "debug-access", "prompt-extraction",
)  # fmt: skip
STRATEGIES = ("basic", "jailbreak", "jailbreak:composite", "prompt-injection", "base64", "rot13")
SEVERITIES = ("low", "medium", "high", "critical")
WORDS = [
    "model",
    "answer",
    "policy",
    "refund",
    "order",
    "travel",
    "summary",
    "bill",
    "deal",
    "user",
    "case",
    "note",
    "plan",
    "sale",
    "risk",
    "cost",
    "data",
    "file",
    "team",
    "task",
    "code",
    "test",
    "date",
    "rate",
    "fund",
    "loan",
    "term",
    "fee",
    "tax",
    "item",
    "city",
]


def prompt_specs() -> list[dict[str, Any]]:
    return [
        {"raw": f"You are assistant #{i}. Answer the user's question: {{{{question}}}}",
         "label": f"assistant-{i}", "provider": {"id": f"openai:gpt-4o-mini-{i}"}}
        for i in range(PROMPT_COUNT)
    ]  # fmt: skip


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_result(test_idx: int, prompt_idx: int, rng: random.Random) -> dict[str, Any]:
    """A promptfoo EvaluateResult of about 600 bytes of JSON, every JSON column filled."""
    plugin = PLUGINS[test_idx % len(PLUGINS)]
    vars_ = {"question": _sentence(rng, 4), "topic": WORDS[test_idx % len(WORDS)]}
    output = _sentence(rng, 8)
    if rng.random() < 0.005:
        output += f" {MARKER}"
    roll = rng.random()
    tokens = {"prompt": 40 + test_idx % 50, "completion": 60, "total": 100 + test_idx % 50,
              "cached": 0, "numRequests": 1}  # fmt: skip
    result: dict[str, Any] = {
        "promptIdx": prompt_idx,
        "testIdx": test_idx,
        "testCase": {"vars": vars_, "description": f"case {test_idx}"},
        "prompt": {"raw": f"Answer: {vars_['question']}", "label": f"assistant-{prompt_idx}"},
        "provider": {"id": f"openai:gpt-4o-mini-{prompt_idx}"},
        "latencyMs": 200 + (test_idx * 7 + prompt_idx) % 900,
        "cost": 0.00012,
        "metadata": {
            "pluginId": plugin,
            "strategyId": STRATEGIES[test_idx % len(STRATEGIES)],
            "severity": SEVERITIES[(test_idx // 3) % len(SEVERITIES)],
        },  # fmt: skip
    }
    if roll < 0.03:
        result.update(success=False, score=0.0, error="Error: 429 rate limited", failureReason=2,
                      response={"output": "", "tokenUsage": tokens}, gradingResult=None,
                      namedScores={})  # fmt: skip
        return result
    passed = roll >= 0.28
    score = 1.0 if passed else 0.0
    result.update(
        success=passed,
        score=score,
        response={"output": output, "tokenUsage": tokens},
        gradingResult={
            "pass": passed,
            "score": score,
            "reason": "ok" if passed else "no topic",
            "componentResults": [
                {
                    "pass": passed,
                    "score": score,
                    "reason": "contains",
                    "assertion": {"type": "contains", "value": vars_["topic"]},
                }
            ],
        },  # fmt: skip
        namedScores={"accuracy": score},
    )
    return result


def result_batches(
    tests: int, *, batch: int = 1000, start_test: int = 0, seed: int = 7
) -> Iterator[list[dict[str, Any]]]:
    """Results in test order, `batch` at a time (every prompt of a test in one batch)."""
    rng = random.Random(seed)
    per_batch = max(batch // PROMPT_COUNT, 1)
    for first in range(start_test, start_test + tests, per_batch):
        last = min(first + per_batch, start_test + tests)
        yield [make_result(t, p, rng) for t in range(first, last) for p in range(PROMPT_COUNT)]


def mean_json_bytes(batch: list[dict[str, Any]]) -> float:
    return sum(len(json.dumps(r, separators=(",", ":"))) for r in batch) / max(len(batch), 1)


# --- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(env: dict[str, str], log_path: Path) -> Server:
    """daphne on 127.0.0.1:<free port>, serving this home's database; waits until it answers."""
    port = free_port()
    daphne = Path(sys.executable).with_name("daphne")
    handle = log_path.open("ab")
    process = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "alchemy_site.asgi:application"],
        cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited ({process.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Server(process, port)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"daphne did not listen on {port} within 60 s; see {log_path}")


def child_env() -> dict[str, str]:
    """The environment for servers and import commands: this bench's home and database."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


@dataclass
class Context:
    """What the groups share: where the data lives and what has been built."""

    scale: Scale
    home: Path
    vendor: str
    api_key: str = ""
    username: str = ""
    big_eval_id: str = ""
    server: Server | None = None
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        log(f"{figure.name}: {figure.value:,.3f} {figure.unit} (target {figure.target})")
        return figure
