"""HTTP load on loopback: `python -m tests.reliability.load --seconds 60 --clients 50`.

Starts daphne on its own ALCHEMY_HOME (migrated, one running eval seeded with a few
thousand results through evals.services, an API key), then runs `--clients` asyncio
httpx clients that mix table pages (modes, offsets, searches), stats, small result
batches posted to the running eval and OTLP protobuf exports. The run stops after
`--seconds` or `--max-requests`, whichever comes first. It prints requests/s and
p50/p95/p99 per kind and overall, the 5xx count (which must be zero), and whether
every accepted result and span was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.servers import daphne, migrate
from tests.procs import run_django

SEED = """
import json
from django.contrib.auth import get_user_model
from alchemy_site.auth import create_api_key
from evals import services
from tests.evals.factories import make_eval, result
user, _ = get_user_model().objects.get_or_create(username="load")
_, key = create_api_key(user=user, name="load")
eval_ = make_eval(id="eval-load{tag}-2025-01-01T00:00:00")
for start in range(0, {tests}, 500):
    services.add_results(eval=eval_, results=[
        result(t, p, success=(t + p) % 3 != 0, score=(t % 7) / 7, latency_ms=t % 90,
               metadata={{"pluginId": f"p{{t % 4}}"}})
        for t in range(start, min(start + 500, {tests})) for p in range(2)
    ])
print(json.dumps({{"eval_id": eval_.id, "key": key}}))
"""

COUNT = """
import json
from evals.models import EvalResult
from tracing.models import Span
print(json.dumps({{
    "results": EvalResult.objects.filter(eval_id={eval_id!r}).count(),
    "spans": Span.objects.filter(name__startswith={prefix!r}).count(),
}}))
"""

KINDS = ("table", "stats", "results", "otlp")
WEIGHTS = (5, 2, 2, 1)
FILTERS = json.dumps([{"type": "plugin", "operator": "equals", "value": "p1"}])


def otlp_body(prefix: str, spans: int, *, attribute_bytes: int = 64) -> bytes:
    """An ExportTraceServiceRequest of `spans` spans in one new trace, as protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    trace_id = secrets.token_bytes(16)
    now = time.time_ns()
    rows = [
        Span(
            trace_id=trace_id,
            span_id=secrets.token_bytes(8),
            name=f"{prefix}{i}",
            start_time_unix_nano=now + i,
            end_time_unix_nano=now + i + 1_000_000,
            attributes=[
                KeyValue(key="payload", value=AnyValue(string_value="x" * attribute_bytes)),
                KeyValue(key="api_key", value=AnyValue(string_value="sk-live-secret")),
            ],
        )  # fmt: skip
        for i in range(spans)
    ]
    service = KeyValue(key="service.name", value=AnyValue(string_value="load"))
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[service]), scope_spans=[ScopeSpans(spans=rows)]
            )
        ]
    )
    return request.SerializeToString()


def posted_result(test_idx: int, prompt_idx: int) -> dict:
    """A small promptfoo result, as a runner posts it while an eval runs."""
    vars_ = {"word": f"w{test_idx}"}
    return {
        "testIdx": test_idx, "promptIdx": prompt_idx, "vars": vars_, "testCase": {"vars": vars_},
        "prompt": {"raw": f"Say w{test_idx}", "label": "Say {{word}}"}, "provider": "echo",
        "response": {"output": f"w{test_idx}"}, "success": test_idx % 4 != 0, "latencyMs": 12,
        "gradingResult": {"pass": test_idx % 4 != 0, "score": 1.0, "reason": "load"},
    }  # fmt: skip


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    failures: list[str] = field(default_factory=list)
    results_accepted: int = 0
    spans_accepted: int = 0
    requests: int = 0

    def server_errors(self) -> int:
        return sum(n for by in self.statuses.values() for s, n in by.items() if s >= 500)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def client_loop(
    http: httpx.AsyncClient, *, number: int, eval_id: str, tests: int, prefix: str,
    until: float, budget: list[int], tally: Tally, next_test: list[int],
) -> None:  # fmt: skip
    rng = random.Random(number)
    while time.monotonic() < until and budget[0] > 0:
        budget[0] -= 1
        kind = rng.choices(KINDS, WEIGHTS)[0]
        started = time.perf_counter()
        try:
            if kind == "table":
                params = {
                    "mode": rng.choice(["all", "all", "failures", "passes"]),
                    "offset": rng.randrange(0, tests * 2, 50), "limit": rng.choice([20, 50, 100]),
                }  # fmt: skip
                extra = rng.choice([{}, {}, {"search": "w1"}, {"filters": FILTERS}])
                response = await http.get(f"/api/evals/{eval_id}/table", params={**params, **extra})
            elif kind == "stats":
                mode = rng.choice(["all", "failures", "passes"])
                response = await http.get(f"/api/evals/{eval_id}/stats", params={"mode": mode})
            elif kind == "results":
                first = next_test[0]
                next_test[0] += 5
                batch = [posted_result(t, p) for t in range(first, first + 5) for p in range(2)]
                response = await http.post(f"/api/evals/{eval_id}/results", json=batch)
                if response.status_code == 200:
                    tally.results_accepted += response.json()["stored"]
            else:
                body = otlp_body(prefix, 10)
                response = await http.post(
                    "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}
                )
                if response.status_code == 200:
                    tally.spans_accepted += 10
        except httpx.HTTPError as exc:
            tally.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        tally.latencies[kind].append(time.perf_counter() - started)
        tally.statuses[kind][response.status_code] += 1
        tally.requests += 1


async def drive(base: str, key: str, eval_id: str, *, tests: int, clients: int, seconds: float,
                max_requests: int, prefix: str) -> tuple[Tally, float]:  # fmt: skip
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:
        started = time.monotonic()
        until, budget, next_test = started + seconds, [max_requests], [tests]
        await asyncio.gather(*(
            client_loop(http, number=i, eval_id=eval_id, tests=tests, prefix=prefix, until=until,
                        budget=budget, tally=tally, next_test=next_test)
            for i in range(clients)
        ))  # fmt: skip
        elapsed = time.monotonic() - started
    return tally, elapsed


def report(tally: Tally, elapsed: float, *, clients: int) -> str:
    lines = [f"{clients} clients for {elapsed:.1f} s: {tally.requests:,} requests"]
    everything: list[float] = []
    for kind in KINDS:
        values = tally.latencies.get(kind, [])
        everything += values
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(tally.statuses[kind].items()))
        lines.append(
            f"  {kind:<8} {len(values) / elapsed:7.1f} req/s  p50 {percentile(values, 0.5) * 1000:6.0f} ms"
            f"  p95 {percentile(values, 0.95) * 1000:6.0f} ms  p99 {percentile(values, 0.99) * 1000:6.0f} ms"
            f"  [{statuses}]"
        )
    lines.append(
        f"  {'overall':<8} {len(everything) / elapsed:7.1f} req/s  p50 {percentile(everything, 0.5) * 1000:6.0f} ms"
        f"  p95 {percentile(everything, 0.95) * 1000:6.0f} ms  p99 {percentile(everything, 0.99) * 1000:6.0f} ms"
    )
    lines.append(f"  5xx: {tally.server_errors()}; connection errors: {len(tally.failures)}")
    return "\n".join(lines) + "\n"


@dataclass
class LoadOutcome:
    tally: Tally
    elapsed: float
    seeded: int
    stored_results: int
    stored_spans: int
    text: str


def run_load(home: Path, *, clients: int, seconds: float, max_requests: int, tests: int = 1_500,
             env: dict[str, str] | None = None) -> LoadOutcome:  # fmt: skip
    """Seed `home` (already migrated), serve it with daphne and drive the load."""
    env = env or {}
    tag = secrets.token_hex(3)
    seeded = json.loads(
        run_django(SEED.format(tag=tag, tests=tests), home, timeout=600, **env).stdout.splitlines()[
            -1
        ]
    )
    prefix = f"load-{tag}-"
    with daphne(home, **env) as base:
        tally, elapsed = asyncio.run(drive(
            base, seeded["key"], seeded["eval_id"], tests=tests, clients=clients, seconds=seconds,
            max_requests=max_requests, prefix=prefix,
        ))  # fmt: skip
    stored = json.loads(
        run_django(COUNT.format(eval_id=seeded["eval_id"], prefix=prefix), home, **env)
        .stdout.splitlines()[-1]
    )  # fmt: skip
    text = report(tally, elapsed, clients=clients) + (
        f"  results: {tests * 2:,} seeded + {tally.results_accepted:,} accepted = "
        f"{tests * 2 + tally.results_accepted:,} expected, {stored['results']:,} stored; "
        f"spans: {tally.spans_accepted:,} accepted, {stored['spans']:,} stored\n"
    )
    return LoadOutcome(tally, elapsed, tests * 2, stored["results"], stored["spans"], text)


@contextmanager
def scratch_home(prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A migrated, throw-away ALCHEMY_HOME for the scripts, and the env to serve it with:
    SQLite there, or the database DATABASE_URL names (migrated as it is)."""
    env = {"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp)
        home.chmod(0o700)
        migrate(home, **env)
        yield home, env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--tests", type=int, default=1_500, help="seeded tests (× 2 prompts)")
    args = parser.parse_args(argv)
    with scratch_home("alchemy-load-") as (home, env):
        sys.stdout.write(
            f"daphne on 127.0.0.1, {'PostgreSQL' if env else 'SQLite'}; {args.clients} clients, "
            f"≤ {args.seconds:g} s, ≤ {args.max_requests:,} requests, "
            f"mix table:stats:results:otlp = {':'.join(map(str, WEIGHTS))}\n"
        )
        outcome = run_load(home, clients=args.clients, seconds=args.seconds,
                           max_requests=args.max_requests, tests=args.tests, env=env)  # fmt: skip
    sys.stdout.write(outcome.text)
    ok = (
        outcome.tally.server_errors() == 0
        and outcome.stored_results == outcome.seeded + outcome.tally.results_accepted
        and outcome.stored_spans == outcome.tally.spans_accepted
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
