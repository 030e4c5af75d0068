"""The embedded SQLite file: pragmas, file modes and concurrent writers."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction

from alchemy_site.models import ApiKey
from tests.procs import run_django, start_django

pytestmark = pytest.mark.django_db

PROBE = """
import json
from django.db import connection
from django.conf import settings
with connection.cursor() as c:
    c.execute("PRAGMA journal_mode"); journal = c.fetchone()[0]
    c.execute("PRAGMA foreign_keys"); fks = c.fetchone()[0]
    c.execute("PRAGMA synchronous"); sync = c.fetchone()[0]
    c.execute("PRAGMA busy_timeout"); busy = c.fetchone()[0]
print(json.dumps({"journal": journal, "fks": fks, "sync": sync, "busy": busy,
                  "path": str(settings.DATABASES["default"]["NAME"])}))
"""


def probe(home: Path, **env: str) -> dict:
    return json.loads(run_django(PROBE, home, **env).stdout.strip().splitlines()[-1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_database_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path):
    found = probe(tmp_path / "home")
    assert found["journal"] == "wal"
    assert found["fks"] == 1
    assert found["sync"] == 1  # NORMAL
    assert found["busy"] >= 5000


def test_disabling_wal_falls_back_to_the_rollback_journal(tmp_path):
    found = probe(tmp_path / "home", ALCHEMY_DISABLE_WAL="1")
    assert found["journal"] == "delete"


def test_home_is_private_and_the_database_and_secret_key_are_owner_only(tmp_path):
    home = tmp_path / "home"
    found = probe(home)
    assert mode(home) == 0o700
    assert mode(Path(found["path"])) == 0o600
    assert mode(home / "secret_key") == 0o600


def test_the_secret_key_is_generated_once_and_reused(tmp_path):
    home = tmp_path / "home"
    body = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_django(body, home).stdout.strip()
    second = run_django(body, home).stdout.strip()
    assert first == second
    assert len(first) >= 50


def test_foreign_keys_are_enforced_by_the_database(user):
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(user_id=987654321, prefix="dangling", hashed_key="x" * 64)
        # SQLite and PostgreSQL check deferred constraints at commit; force it now.
        connection.check_constraints()


WRITER = """
import sys
from django.db import connection, transaction
errors = 0
with connection.cursor() as c:
    c.execute("CREATE TABLE IF NOT EXISTS hammer (id INTEGER PRIMARY KEY, writer TEXT, n INTEGER)")
for n in range(int(sys.argv[1]) if len(sys.argv) > 1 else 2000):
    try:
        with transaction.atomic(), connection.cursor() as c:
            c.execute("INSERT INTO hammer (writer, n) VALUES (%s, %s)", [WHO, n])
    except Exception as exc:
        errors += 1
        print("ERROR", exc, file=sys.stderr)
print("errors", errors)
"""


def test_two_processes_writing_the_same_file_never_see_database_is_locked(tmp_path):
    home = tmp_path / "home"
    run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE hammer (id INTEGER PRIMARY KEY, writer TEXT, n INTEGER)')",
        home,
    )
    writers = [start_django(f"WHO = {who!r}\n" + WRITER, home) for who in ("a", "b")]
    outputs = [w.communicate(timeout=300) for w in writers]
    for (out, err), w in zip(outputs, writers, strict=True):
        assert w.returncode == 0, err
        assert "errors 0" in out, err
        assert "locked" not in err
    counts = run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('SELECT writer, COUNT(DISTINCT n) FROM hammer GROUP BY writer ORDER BY writer')\n"
        "    print(c.fetchall())",
        home,
    ).stdout.strip()
    assert counts == "[('a', 2000), ('b', 2000)]"
