"""Run Django code in separate processes: for WAL, locking and crash tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PRELUDE = """
import os, sys
sys.path.insert(0, {repo!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alchemy_site.settings")
import django
django.setup()
"""


def django_env(home: Path, **extra: str) -> dict[str, str]:
    """The child's environment: its own ALCHEMY_HOME and, unless DATABASE_URL is
    passed in `extra`, the embedded SQLite file there."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"ALCHEMY_HOME": str(home), "PYTHONPATH": str(REPO)})
    env.update(extra)
    return env


def script(body: str) -> list[str]:
    code = PRELUDE.format(repo=str(REPO)) + textwrap.dedent(body)
    return [sys.executable, "-c", code]


def run_django(
    body: str, home: Path, *, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """Run `body` after django.setup() in a new interpreter; raises if it fails."""
    result = subprocess.run(
        script(body), env=django_env(home, **env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def start_django(body: str, home: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        script(body),
        env=django_env(home, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def manage(*args: str, home: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=django_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
