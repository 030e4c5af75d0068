"""`manage.py db backup` taken while a writer adds result batches restores whole.

A writer process adds batches through evals.services.add_results and prints a line
after each commit. Once it has committed a few, the backup starts; the writer keeps
going until the backup is done. The backup is restored (`db restore --yes`) into a
fresh home (SQLite) or a fresh database (PostgreSQL, pg_dump/pg_restore), which must
pass `db integrity-check` and hold every batch committed before the backup began,
only whole batches, and no more than the writer ever committed.
"""

from __future__ import annotations

import json
import secrets
import sys
from contextlib import contextmanager

from tests.procs import manage, run_django, start_django
from tests.reliability.conftest import ProcDb, _postgres_url

BATCH = 100
WRITER = """
import sys
from pathlib import Path
from evals import services
from tests.evals.factories import make_eval, result
eval_id, stop, most, BATCH = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
eval_ = make_eval(id=eval_id)
for n in range(most):
    if stop.exists():
        break
    rows = [result(t, t % 2, output="o" * 200) for t in range(n * BATCH, (n + 1) * BATCH)]
    services.add_results(eval=eval_, results=rows)
    print(f"committed {n + 1}", flush=True)
"""
COUNT = """
import json
from evals.models import EvalResult
print(json.dumps({"rows": EvalResult.objects.filter(eval_id=EVAL_ID).count()}))
"""


@contextmanager
def restored_copy(proc_db: ProcDb, backup, tmp_path):
    """A home whose database is the backup, restored with `db restore --yes`; yields its env."""
    home = tmp_path / "restored"
    home.mkdir(mode=0o700)
    if proc_db.vendor == "sqlite":
        done = manage("db", "restore", str(backup), "--yes", home=home)
        assert done.returncode == 0, done.stdout + done.stderr
        yield home, {}
        return
    import psycopg

    name = f"alc_rel_restore_{secrets.token_hex(4)}"
    admin = _postgres_url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {"DATABASE_URL": _postgres_url(name)}
    try:
        done = manage("db", "restore", str(backup), "--yes", home=home, **env)
        assert done.returncode == 0, done.stdout + done.stderr
        yield home, env
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_taken_during_heavy_writes_restores_every_batch_committed_before_it(
    proc_db, tmp_path
):
    eval_id = f"eval-bk{secrets.token_hex(2)}-2025-01-01T00:00:00"
    stop, backup = tmp_path / "stop", tmp_path / "backup.db"
    body = f"import sys; sys.argv[1:] = {[eval_id, str(stop), '400', str(BATCH)]!r}\n" + WRITER
    writer = start_django(body, proc_db.home, **proc_db.env)
    committed_before = 0
    for line in writer.stdout:
        committed_before = int(line.split()[1])
        if committed_before >= 5:
            break
    assert committed_before >= 5, writer.stderr.read()[-3000:]
    made = proc_db.manage("db", "backup", str(backup))
    stop.touch()
    rest, err = writer.communicate(timeout=300)
    assert made.returncode == 0 and writer.returncode == 0, made.stderr + err[-3000:]
    committed_total = max([committed_before] + [int(line.split()[1]) for line in rest.splitlines()])
    if proc_db.vendor == "sqlite":
        check = proc_db.manage("db", "integrity-check", "--file", str(backup))
        assert check.returncode == 0, check.stdout + check.stderr

    with restored_copy(proc_db, backup, tmp_path) as (home, env):
        check = manage("db", "integrity-check", home=home, **env)
        assert check.returncode == 0, check.stdout + check.stderr
        rows = json.loads(
            run_django(f"EVAL_ID = {eval_id!r}\n" + COUNT, home, **env).stdout.splitlines()[-1]
        )["rows"]
    sys.stdout.write(
        f"\n[{proc_db.vendor}] backup during writes of {BATCH}-result batches: "
        f"{committed_before} batches committed before it began, {committed_total} by the end; "
        f"restored copy holds {rows:,} results ({rows // BATCH} whole batches), integrity clean\n"
    )
    assert rows % BATCH == 0
    assert committed_before * BATCH <= rows <= committed_total * BATCH
