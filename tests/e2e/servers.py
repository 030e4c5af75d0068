"""Real daphne servers for browser and multi-process tests: subprocesses with their own home."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.procs import REPO, django_env, manage, run_django

PASSWORD = "correct-horse-battery"

SEED = """
import json
from django.contrib.auth import get_user_model
from evals import services
from tests.evals import factories

User = get_user_model()
user = User.objects.filter(username="alice").first() or User.objects.create_user(
    "alice", password={password!r}
)
eval_ = factories.make_eval(prompts=2, description={description!r}, tags={{"team": "geo"}})
rows = factories.grid({tests}, prompts=2)
for row in rows:
    if row["testIdx"] % 3 == 0 and row["promptIdx"] == 1:
        row.update(success=False, score=0.0, failureReason=1)
        row["gradingResult"].update({{"pass": False, "score": 0.0, "reason": "wrong city"}})
        row["metadata"] = {{"pluginId": "harmful:hate", "severity": "high"}}
services.add_results(eval=eval_, results=rows)
{extra}
print(json.dumps({{"eval_id": eval_.id}}))
"""

SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.get(username="alice")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""

APPEND = """
from evals import services
from evals.models import Eval
from tests.evals import factories
eval_ = Eval.objects.get(pk={eval_id!r})
services.add_results(eval=eval_, results=factories.grid({tests}, prompts=2)[{start} * 2:])
{extra}
"""


EXTRAS = """
import base64, json
from evals import services
from tests.prompts.factories import PromptFactory
from tests.tracing.factories import export_of, otlp_span, png_bytes
from tracing.services import ingest_request

trace_id = "0af7651916cd43dd8448eb211c80319c"
link = {{"evaluation.id": {eval_id!r}, "test.index": 3, "prompt.index": 1}}
ingest_request(request=export_of(
    otlp_span(trace_id, "1" * 16, "provider call", duration_ms=120, attributes=link),
    otlp_span(trace_id, "2" * 16, "grading", parent="1" * 16, start_ms=30, duration_ms=60),
))
root = PromptFactory(content="Name the capital of {{{{country}}}}.", tags=["geo"])
prompt = PromptFactory(content="Name the capital city of {{{{country}}}}, one word.", parent=root)

maps = services.create_eval(config={{"description": "Maps"}}, description="Maps",
                            prompts=[{{"raw": "Draw {{{{place}}}}", "label": "draw"}}])
services.add_results(eval=maps, results=[
    {{"testIdx": t, "promptIdx": 0, "success": t != 1, "score": float(t != 1),
      "testCase": {{"vars": {{"place": p}}}}, "vars": {{"place": p}},
      "response": {{"output": "Here is " + p + ": ![map](data:image/png;base64,"
                   + base64.b64encode(png_bytes(seed=t, side=40)).decode() + ")"}}}}
    for t, p in enumerate(["Paris", "Rome", "Oslo"])
])
print(json.dumps({{"trace_id": trace_id, "prompt_id": str(prompt.pk), "maps": maps.id}}))
"""

RATE = """
from evals import services
from evals.models import Eval, EvalResult
eval_ = Eval.objects.get(pk={eval_id!r})
row = EvalResult.objects.get(eval=eval_, test_idx={test_idx}, prompt_idx={prompt_idx})
services.rate_result(eval=eval_, result_id=row.pk, passed={passed!r}, reason="elsewhere")
"""


def seed_extras(home: Path, eval_id: str, **env: str) -> dict[str, str]:
    """A trace linked to test 3 / prompt 1 of `eval_id`, two registry prompts, and an
    eval whose outputs are images (in blobs): the rest of the pages to look at."""
    out = run_django(EXTRAS.format(eval_id=eval_id), home, **env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rate(home: Path, eval_id: str, *, test_idx: int, prompt_idx: int, passed: bool, **env):
    """Rate one result from another process, through the write path."""
    run_django(
        RATE.format(eval_id=eval_id, test_idx=test_idx, prompt_idx=prompt_idx, passed=passed),
        home,
        **env,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def migrate(home: Path, **env: str) -> None:
    done = manage("migrate", "--noinput", home=home, **env)
    assert done.returncode == 0, done.stderr[-3000:]


def seed_eval(home: Path, *, tests: int, description: str = "Capitals", extra: str = "", **env):
    out = run_django(
        SEED.format(password=PASSWORD, description=description, tests=tests, extra=extra),
        home,
        **env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["eval_id"]


def append_results(home: Path, eval_id: str, *, start: int, stop: int, extra: str = "", **env):
    """Results for tests start..stop-1 (both prompts), through the real write path."""
    run_django(APPEND.format(eval_id=eval_id, tests=stop, start=start, extra=extra), home, **env)


def session_key(home: Path, **env: str) -> str:
    return run_django(SESSION, home, **env).stdout.strip().splitlines()[-1]


@contextmanager
def daphne(home: Path, **env: str):
    """A daphne serving alchemy_site.asgi on a free loopback port; yields its base URL."""
    port = free_port()
    log = (home / f"daphne-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "--application-close-timeout", "2", "alchemy_site.asgi:application"],
        cwd=REPO, env=django_env(home, **env), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, home / f"daphne-{port}.log")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_healthy(base: str, process: subprocess.Popen, log: Path, deadline: float = 30) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if process.poll() is not None:
            raise AssertionError(f"daphne exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"daphne did not answer /healthz within {deadline}s:\n{log.read_text()}")
