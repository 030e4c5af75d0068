"""OTLP flood: `python -m tests.reliability.otlp_flood --clients 16 --requests 200`.

Many concurrent large OTLP exports against a daphne whose span queue is small
(ALCHEMY_OTLP_QUEUE_MAX_SPANS). The receiver must push back with 429 (or 503) and
Retry-After instead of holding every body in memory, and every span of every
request answered 200 must be stored. Prints the answers, the server's RSS before and
after (and its peak, VmHWM, from /proc/<pid>/status) and the stored span count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tests.e2e.servers import daphne
from tests.procs import run_django
from tests.reliability.load import otlp_body, scratch_home

KEY = """
import json
from django.contrib.auth import get_user_model
from alchemy_site.auth import create_api_key
user, _ = get_user_model().objects.get_or_create(username="flood")
print(json.dumps({"key": create_api_key(user=user, name="flood")[1]}))
"""

COUNT = """
import json
from tracing.models import Span
spans = Span.objects.filter(name__startswith={prefix!r})
first = spans.first()
print(json.dumps({{"spans": spans.count(), "api_key": first.attributes.get("api_key") if first else None}}))
"""


def server_pid(base: str) -> int:
    """The pid of the daphne listening on `base`'s port (started by servers.daphne)."""
    port = str(urlparse(base).port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"daphne" in argv and b"-p" in argv and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no daphne process listens on port {port}")


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in {"VmRSS", "VmHWM"}:
            fields[name] = int(value.split()[0])
    return fields


@dataclass
class Flood:
    statuses: Counter = field(default_factory=Counter)
    missing_retry_after: int = 0
    accepted_spans: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    stored_spans: int = 0
    stored_api_key: str | None = None

    def report(self, *, clients: int, spans: int, body_bytes: int) -> str:
        answers = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{clients} clients flooded {sum(self.statuses.values())} exports of {spans:,} spans "
            f"({body_bytes / 1e6:.1f} MB each) in {self.seconds:.1f} s: {answers}; "
            f"{self.missing_retry_after} pushbacks without Retry-After; "
            f"{len(self.errors)} connection errors\n"
            f"  server RSS {self.before['VmRSS'] / 1024:.0f} MiB before, "
            f"{self.after['VmRSS'] / 1024:.0f} MiB after, peak {self.after['VmHWM'] / 1024:.0f} MiB\n"
            f"  spans: {self.accepted_spans:,} accepted (answered 200), {self.stored_spans:,} stored; "
            f"an `api_key` attribute was stored as {self.stored_api_key!r}\n"
        )


async def flood(base: str, key: str, *, clients: int, requests: int, seconds: float,
                spans: int, prefix: str) -> Flood:  # fmt: skip
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    outcome = Flood()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    budget, until = [requests], time.monotonic() + seconds

    async def client(number: int, http: httpx.AsyncClient) -> None:
        while budget[0] > 0 and time.monotonic() < until:
            budget[0] -= 1
            # A fresh trace per request, so accepted spans are new rows, never replays.
            body = otlp_body(prefix, spans, attribute_bytes=1_000)
            try:
                response = await http.post("/v1/traces", content=body, headers=headers)
            except httpx.HTTPError as exc:
                outcome.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            outcome.statuses[response.status_code] += 1
            if response.status_code == 200:
                outcome.accepted_spans += spans
            elif response.status_code in (429, 503) and not response.headers.get("Retry-After"):
                outcome.missing_retry_after += 1

    limits = httpx.Limits(max_connections=clients)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    outcome.seconds = time.monotonic() - started
    return outcome


def run_flood(home: Path, *, clients: int, requests: int, seconds: float, spans: int,
              queue_max: int, env: dict[str, str] | None = None) -> tuple[Flood, str]:  # fmt: skip
    """Flood a daphne on `home` (already migrated); returns the outcome and its report."""
    env = env or {}
    key = json.loads(run_django(KEY, home, **env).stdout.splitlines()[-1])["key"]
    prefix = f"flood-{secrets.token_hex(3)}-"
    with daphne(home, ALCHEMY_OTLP_QUEUE_MAX_SPANS=str(queue_max), **env) as base:
        pid = server_pid(base)
        before = memory_kib(pid)
        outcome = asyncio.run(flood(base, key, clients=clients, requests=requests, seconds=seconds,
                                    spans=spans, prefix=prefix))  # fmt: skip
        outcome.before, outcome.after = before, memory_kib(pid)
    stored = json.loads(
        run_django(COUNT.format(prefix=prefix), home, **env).stdout.splitlines()[-1]
    )
    outcome.stored_spans, outcome.stored_api_key = stored["spans"], stored["api_key"]
    body_bytes = len(otlp_body(prefix, spans, attribute_bytes=1_000))
    text = f"daphne with ALCHEMY_OTLP_QUEUE_MAX_SPANS={queue_max:,}; " + outcome.report(
        clients=clients, spans=spans, body_bytes=body_bytes
    )
    return outcome, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--spans", type=int, default=1_000, help="spans per export")
    parser.add_argument("--queue-max", type=int, default=2_000)
    args = parser.parse_args(argv)
    with scratch_home("alchemy-flood-") as (home, env):
        outcome, text = run_flood(home, clients=args.clients, requests=args.requests,
                                  seconds=args.seconds, spans=args.spans,
                                  queue_max=args.queue_max, env=env)  # fmt: skip
    sys.stdout.write(text)
    ok = (
        outcome.stored_spans == outcome.accepted_spans
        and outcome.missing_retry_after == 0
        and not any(s >= 500 and s != 503 for s in outcome.statuses)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
