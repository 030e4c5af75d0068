"""Running an eval: jobs on a bounded thread pool, results stored by one writer.

Workers render, call the provider and grade; they never touch the database. The calling
thread is the only writer: it collects finished results and stores them in batches
through `add_results` (every `batch_size` results or `flush_interval_s`), so concurrency
never fights over SQLite's write lock and the dashboard sees results as they finish.
Ctrl-C (or `stop`) stops new work; what finished is stored and the run reports itself
interrupted, to be continued with `--resume`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError

from evals.evaluator import assertions, otel, render
from evals.evaluator.config import EvalConfig, PromptSpec, ProviderSpec
from evals.evaluator.providers import Provider, RetryPolicy, build_provider
from evals.models import Eval, FailureReason

BATCH_SIZE = 50
FLUSH_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Column:
    """One prompt × provider pair: a column of the results table, i.e. a promptIdx."""

    prompt_idx: int
    prompt: PromptSpec
    provider: ProviderSpec
    provider_idx: int


@dataclass
class Job:
    test_idx: int
    column: Column
    test: dict[str, Any]
    repeat_idx: int = 0


@dataclass
class Tally:
    total: int = 0
    done: int = 0
    passes: int = 0
    failures: int = 0
    errors: int = 0
    stored: int = 0
    skipped: int = 0

    def count(self, result: dict[str, Any]) -> None:
        self.done += 1
        if result["success"]:
            self.passes += 1
        elif result["failureReason"] == FailureReason.ERROR:
            self.errors += 1
        else:
            self.failures += 1


@dataclass
class RunOutcome:
    tally: Tally
    interrupted: bool
    duration_ms: int
    results: list[dict[str, Any]] = field(default_factory=list)


def columns(config: EvalConfig) -> list[Column]:
    """promptfoo's order: providers outer, prompts inner."""
    pairs = [
        (prompt, provider, provider_idx)
        for provider_idx, provider in enumerate(config.providers)
        for prompt in config.prompts
    ]
    return [Column(idx, *pair) for idx, pair in enumerate(pairs)]


def prompt_columns(config: EvalConfig) -> list[dict[str, Any]]:
    """The prompts as `create_eval` takes them, position = promptIdx."""
    return [
        {"raw": c.prompt.raw, "label": c.prompt.label, "provider": c.provider.label}
        for c in columns(config)
    ]


def merge_default(test: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    merged = {**test}
    merged["vars"] = {**default.get("vars", {}), **test.get("vars", {})}
    merged["assert"] = [*default.get("assert", []), *test.get("assert", [])]
    for key in ("options", "metadata"):
        if default.get(key) or test.get(key):
            merged[key] = {**default.get(key, {}), **test.get(key, {})}
    if "threshold" not in test and "threshold" in default:
        merged["threshold"] = default["threshold"]
    return merged


def build_jobs(config: EvalConfig) -> Iterator[Job]:
    """Every (testIdx, promptIdx) job, numbered exactly as promptfoo numbers them.

    Deterministic from the config alone, which is what lets `--resume` skip what is stored.
    """
    cols = columns(config)
    tests = config.tests or [{}]
    test_idx = 0
    for raw_test in tests:
        test = merge_default(raw_test, config.default_test)
        expand = not (test.get("options") or {}).get("disableVarExpansion")
        combos = render.expand_vars(test["vars"]) if expand else [test["vars"]]
        for repeat_idx in range(config.repeat):
            for variables in combos:
                case = {**test, "vars": variables}
                for column in cols:
                    yield Job(test_idx, column, case, repeat_idx)
                test_idx += 1


def count_jobs(config: EvalConfig) -> int:
    return sum(1 for _ in build_jobs(config))


class Pricer:
    """Per-provider token rates, looked up once by the writer thread (workers stay off the DB)."""

    def __init__(self, providers: list[Provider]) -> None:
        self.rates: dict[int, tuple[float, float] | None] = {}
        for provider in providers:
            self.rates[id(provider)] = self._rates(provider)

    @staticmethod
    def _rates(provider: Provider) -> tuple[float, float] | None:
        if not provider.pricing_provider or provider.pricing_provider == "echo":
            return (0.0, 0.0)
        from prompts.pricing import cost_for

        try:
            per_input = cost_for(provider=provider.pricing_provider, model=provider.model,
                                 input_tokens=1_000_000, output_tokens=0)  # fmt: skip
            per_output = cost_for(provider=provider.pricing_provider, model=provider.model,
                                  input_tokens=0, output_tokens=1_000_000)  # fmt: skip
        except DatabaseError:
            return None
        if per_input is None or per_output is None:
            return None
        return per_input / 1_000_000, per_output / 1_000_000

    def cost(self, provider: Provider, usage: dict[str, int]) -> float | None:
        rates = self.rates.get(id(provider))
        if rates is None:
            return None
        return round(usage.get("prompt", 0) * rates[0] + usage.get("completion", 0) * rates[1], 8)


ProgressCallback = Callable[[Tally], None]


@dataclass
class Runner:
    config: EvalConfig
    eval: Eval | None = None
    max_concurrency: int | None = None
    batch_size: int = BATCH_SIZE
    flush_interval_s: float = FLUSH_INTERVAL_S
    retry: RetryPolicy | None = None
    python_timeout_s: float = assertions.PYTHON_TIMEOUT_S
    progress: ProgressCallback | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    keep_results: bool = False
    embedder_name: str | None = None

    def __post_init__(self) -> None:
        self.providers = [
            build_provider(spec.id, spec.label, spec.config, retry=self.retry)
            for spec in self.config.providers
        ]
        self.pricer = Pricer(self.providers)
        self.tracing = otel.RunTracing(self.eval.id) if self.eval and otel.enabled() else None
        self.tracer = self.tracing.tracer if self.tracing else otel.no_op_tracer()
        self._embed = None

    # --- the writer (calling thread) ---------------------------------------------------

    def run(self, *, skip: set[tuple[int, int]] | frozenset = frozenset()) -> RunOutcome:
        started = time.monotonic()
        jobs = [j for j in build_jobs(self.config) if (j.test_idx, j.column.prompt_idx) not in skip]
        tally = Tally(total=len(jobs), skipped=len(skip))
        kept: list[dict[str, Any]] = []
        buffer: list[dict[str, Any]] = []
        concurrency = max(1, self.max_concurrency or self.config.max_concurrency)
        pending = iter(jobs)
        in_flight: set[Future] = set()
        interrupted = False
        last_flush = time.monotonic()
        self._report(tally)
        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="alchemy-eval")
        try:
            while True:
                while len(in_flight) < concurrency * 2 and not self.stop.is_set():
                    job = next(pending, None)
                    if job is None:
                        break
                    in_flight.add(executor.submit(self.execute, job))
                if not in_flight:
                    break
                finished, _ = wait(
                    in_flight, timeout=self.flush_interval_s, return_when=FIRST_COMPLETED
                )
                for future in finished:
                    in_flight.discard(future)
                    self._collect(future.result(), tally, buffer, kept)
                if self.stop.is_set():
                    raise KeyboardInterrupt
                if buffer and (
                    len(buffer) >= self.batch_size
                    or time.monotonic() - last_flush >= self.flush_interval_s
                ):
                    self._flush(buffer, tally)
                    last_flush = time.monotonic()
                self._report(tally)
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
            for future in in_flight:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._collect(future.result(), tally, buffer, kept)
        finally:
            # On interrupt, in-flight calls are abandoned (they end at their timeout).
            executor.shutdown(wait=not interrupted, cancel_futures=True)
        self._flush(buffer, tally)
        if self.tracing:
            self.tracing.finish()
        for provider in self.providers:
            close = getattr(provider, "close", None)
            if close and not interrupted:
                close()
        self._report(tally)
        duration_ms = int((time.monotonic() - started) * 1000)
        return RunOutcome(
            tally=tally, interrupted=interrupted, duration_ms=duration_ms, results=kept
        )

    def _collect(self, result: dict, tally: Tally, buffer: list, kept: list) -> None:
        tally.count(result)
        buffer.append(result)
        if self.keep_results:
            kept.append(result)

    def _flush(self, buffer: list[dict[str, Any]], tally: Tally) -> None:
        if not buffer:
            return
        if self.eval is not None:
            from evals.services import add_results

            outcome = add_results(eval=self.eval, results=list(buffer))
            tally.stored += outcome.stored
            tally.skipped += outcome.skipped
            if self.tracing:
                self.tracing.flush()
        buffer.clear()

    def _report(self, tally: Tally) -> None:
        if self.progress:
            self.progress(tally)

    # --- a worker ----------------------------------------------------------------------

    def embed(self, texts: list[str]):
        if self._embed is None:
            from prompts.embeddings import get_embedder

            self._embed = get_embedder(self.embedder_name).embed
        return self._embed(texts)

    def execute(self, job: Job) -> dict[str, Any]:
        """One test case on one column; every failure becomes an error result."""
        column = job.column
        test_case_id = f"{job.test_idx}:{column.prompt_idx}"
        attributes = {
            "evaluation.id": self.eval.id if self.eval else "",
            "test.case.id": test_case_id,
            "test.index": job.test_idx,
            "prompt.index": column.prompt_idx,
            "provider.id": column.provider.id,
        }
        with self.tracer.start_as_current_span("test case", attributes=attributes) as span:
            result = self._execute(job)
            trace_id = otel.current_trace_id()
            if trace_id:
                result["metadata"]["traceId"] = trace_id
            if result["error"]:
                span.set_status(
                    otel.trace.Status(otel.trace.StatusCode.ERROR, result["error"][:200])
                )
            span.set_attribute("test.success", result["success"])
        return result

    def _execute(self, job: Job) -> dict[str, Any]:
        column, test = job.column, job.test
        provider = self.providers[column.provider_idx]
        variables = test["vars"]
        options = test.get("options") or {}
        result = self._blank_result(job)
        try:
            with self.tracer.start_as_current_span("render"):
                rendered = render.render(column.prompt.raw, variables)
                rendered = f"{options.get('prefix', '')}{rendered}{options.get('suffix', '')}"
            result["prompt"]["raw"] = rendered
            with self.tracer.start_as_current_span(
                f"call {column.provider.id}",
                kind=otel.trace.SpanKind.CLIENT,
                attributes={
                    "gen_ai.system": provider.pricing_provider,
                    "gen_ai.request.model": provider.model,
                },
            ) as call_span:
                t0 = time.monotonic()
                response = provider.call(rendered, headers=otel.traceparent_headers())
                latency_ms = int((time.monotonic() - t0) * 1000)
                usage = {
                    "total": 0,
                    "prompt": 0,
                    "completion": 0,
                    "cached": 0,
                    **response.token_usage,
                }
                call_span.set_attribute("gen_ai.usage.input_tokens", usage["prompt"])
                call_span.set_attribute("gen_ai.usage.output_tokens", usage["completion"])
            cost = self.pricer.cost(provider, usage)
            result["latencyMs"] = latency_ms
            result["cost"] = cost or 0.0
            result["response"] = {
                "output": response.output,
                "tokenUsage": {**usage, "numRequests": 1},
                "cost": cost,
                "cached": response.cached,
            }
            if response.error:
                return self._error(result, response.error)
            with self.tracer.start_as_current_span("assertions") as grade_span:
                context = assertions.Context(
                    vars=variables, prompt=rendered, test=test, latency_ms=latency_ms, cost=cost,
                    embed=self.embed, python_timeout_s=self.python_timeout_s,
                )  # fmt: skip
                grading = assertions.grade(
                    test.get("assert", []),
                    response.output,
                    context,
                    threshold=test.get("threshold"),
                )
                grade_span.set_attribute("assertions.count", len(grading["componentResults"]))
                grade_span.set_attribute("assertions.pass", grading["pass"])
        except render.RenderError as exc:
            return self._error(result, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not end the run
            return self._error(result, f"{type(exc).__name__}: {exc}")
        result.update(
            success=grading["pass"],
            score=grading["score"],
            gradingResult=grading,
            namedScores=grading["namedScores"],
            failureReason=int(FailureReason.NONE if grading["pass"] else FailureReason.ASSERT),
        )
        if not grading["pass"]:
            result["error"] = grading["reason"]
        return result

    @staticmethod
    def _blank_result(job: Job) -> dict[str, Any]:
        column, test = job.column, job.test
        return {
            "promptIdx": column.prompt_idx,
            "testIdx": job.test_idx,
            "testCase": test,
            "vars": test["vars"],
            "prompt": {"raw": column.prompt.raw, "label": column.prompt.label},
            "promptId": hashlib.sha256(column.prompt.raw.encode("utf-8")).hexdigest(),
            "provider": {"id": column.provider.id, "label": column.provider.label},
            "response": None,
            "error": None,
            "success": False,
            "score": 0.0,
            "latencyMs": 0,
            "cost": 0.0,
            "gradingResult": None,
            "namedScores": {},
            "metadata": dict(test.get("metadata") or {}),
            "failureReason": int(FailureReason.ERROR),
        }

    @staticmethod
    def _error(result: dict[str, Any], message: str) -> dict[str, Any]:
        result.update(
            success=False, score=0.0, error=message, failureReason=int(FailureReason.ERROR)
        )
        return result
