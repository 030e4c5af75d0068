"""Reliability tests: `--run-slow` turns on the long (soak) versions, `make soak`.

Tests that need several processes share one migrated database per session, outside
pytest-django's test database: a SQLite file in its own ALCHEMY_HOME, or (when the run
uses DATABASE_URL) a fresh PostgreSQL database that is dropped afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from tests.procs import manage, run_django


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow", action="store_true", default=False,
        help="Run the long reliability tests (marked slow); `make soak`.",
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long version: run with --run-slow (make soak)")
    for item in items:
        if "slow" in item.keywords and "tests/reliability" in str(item.fspath):
            item.add_marker(skip)


def soak(config: pytest.Config) -> bool:
    return bool(config.getoption("--run-slow"))


@dataclass
class ProcDb:
    """A migrated database that subprocesses (writers, servers, commands) share."""

    home: Path
    vendor: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, body: str, *, timeout: float = 300) -> dict:
        """Run Django code in a child; it prints one JSON line last, returned here."""
        out = run_django(body, self.home, timeout=timeout, **self.env)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def manage(self, *args: str, timeout: float = 300):
        return manage(*args, home=self.home, timeout=timeout, **self.env)

    def integrity_check(self) -> str:
        result = self.manage("db", "integrity-check")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def _postgres_url(name: str) -> str:
    parts = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def proc_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcDb]:
    home = tmp_path_factory.mktemp("proc-home")
    home.chmod(0o700)
    if not os.environ.get("DATABASE_URL"):
        db = ProcDb(home=home, vendor="sqlite")
        result = db.manage("migrate", "--no-input", "-v0")
        assert result.returncode == 0, result.stderr
        yield db
        return
    import psycopg

    name = f"alc_rel_procs_{secrets.token_hex(4)}"
    admin_url = _postgres_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = ProcDb(home=home, vendor="postgresql", env={"DATABASE_URL": _postgres_url(name)})
    try:
        result = db.manage("migrate", "--no-input", "-v0")
        assert result.returncode == 0, result.stderr
        yield db
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
