"""Two processes add results to one eval at once; BEGIN IMMEDIATE queues them.

Runs on its own file database (a fresh ALCHEMY_HOME migrated by a subprocess), because
several processes need to share it; no sleeps, just process exits.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import django, sys
django.setup()
from evals import services
from evals.models import Eval
from tests.evals.factories import result
eval_ = Eval.objects.get(pk=sys.argv[1])
start = int(sys.argv[2])
for batch in range(10):
    first = start + batch * 20
    services.add_results(eval=eval_, results=[result(t, p) for t in range(first, first + 20) for p in range(2)])
"""
SETUP = """
import django
django.setup()
from tests.evals.factories import make_eval
make_eval(id="eval-cc1-2025-01-01T00:00:00")
"""


def run(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def check(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="exercises SQLite's writer queue")
def test_two_processes_adding_results_keep_every_row_and_the_aggregates(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    env = {
        **os.environ,
        "ALCHEMY_HOME": str(home),
        "DJANGO_SETTINGS_MODULE": "alchemy_site.settings",
    }
    env.pop("DATABASE_URL", None)
    check(run(env, "manage.py", "migrate", "-v0"))
    check(run(env, "-c", SETUP))
    writers = [
        run(env, "-c", WRITER, "eval-cc1-2025-01-01T00:00:00", str(start)) for start in (0, 200)
    ]
    for proc in writers:
        check(proc)
    db = sqlite3.connect(home / "alchemy.db")
    assert db.execute("SELECT count(*) FROM evals_evalresult").fetchone() == (800,)
    assert db.execute(
        "SELECT sum(result_count), sum(pass_count) FROM evals_evalpromptstats"
    ).fetchone() == (800, 800)
    assert db.execute("SELECT test_count FROM evals_eval").fetchone() == (400,)
    fts = db.execute(  # every result's grading reason: "assertion passed"
        "SELECT count(*) FROM evals_result_fts WHERE evals_result_fts MATCH ?", ['"ass" AND "ion"']
    )
    assert fts.fetchone() == (800,)
    db.close()
