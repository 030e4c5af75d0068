"""`manage.py db …` and the backup taken before migrations."""

from __future__ import annotations

import sqlite3
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from alchemy_site import dbcare
from tests.procs import run_django, start_django

pytestmark = pytest.mark.django_db


def db(*args: str) -> str:
    out = StringIO()
    call_command("db", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def make_sqlite_file(path: Path, rows: int = 50) -> Path:
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))"
    )
    con.execute("CREATE INDEX child_parent ON child(parent_id)")
    con.executemany(
        "INSERT INTO parent (id, name) VALUES (?, ?)", [(i, "x" * 500) for i in range(rows)]
    )
    con.executemany("INSERT INTO child (parent_id) VALUES (?)", [(i,) for i in range(rows)])
    con.commit()
    con.close()
    return path


def test_integrity_check_passes_on_the_live_database():
    assert "ok" in db("integrity-check")


def test_integrity_check_passes_on_a_good_file(tmp_path):
    good = make_sqlite_file(tmp_path / "good.db")
    assert "ok" in db("integrity-check", "--file", str(good))


def test_integrity_check_fails_naming_the_problem_on_a_corrupted_file(tmp_path):
    bad = make_sqlite_file(tmp_path / "bad.db", rows=400)
    data = bytearray(bad.read_bytes())
    # Scribble over the middle pages (table b-trees), leaving the header readable.
    for offset in range(4096 * 2, min(len(data), 4096 * 6), 7):
        data[offset] = 0xA5
    bad.write_bytes(bytes(data))
    err = StringIO()
    with pytest.raises(CommandError, match="problem"):
        call_command("db", "integrity-check", "--file", str(bad), stdout=StringIO(), stderr=err)
    assert "integrity" in err.getvalue()


def test_integrity_check_fails_on_a_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(CommandError, match="db restore"):
        call_command(
            "db", "integrity-check", "--file", str(junk), stdout=StringIO(), stderr=StringIO()
        )


def test_integrity_check_reports_an_orphaned_foreign_key_in_a_file(tmp_path):
    path = make_sqlite_file(tmp_path / "orphan.db")
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("INSERT INTO child (parent_id) VALUES (999999)")
    con.commit()
    con.close()
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("db", "integrity-check", "--file", str(path), stdout=StringIO(), stderr=err)
    assert "foreign key: child" in err.getvalue()


def test_orphan_checks_find_a_row_pointing_at_a_missing_parent(user):
    from alchemy_site.models import ApiKey

    key_table = ApiKey._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA defer_foreign_keys=ON")
        else:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            f"INSERT INTO {key_table} (user_id, name, prefix, hashed_key, created_at) "
            "VALUES (%s, '', 'orphan', 'h', CURRENT_TIMESTAMP)",
            [user.pk + 1000],
        )
        report = dbcare.orphan_checks()
        cursor.execute(f"DELETE FROM {key_table} WHERE prefix = 'orphan'")
    assert not report.ok
    assert any(key_table in problem for problem in report.problems)


def test_stats_lists_tables_with_rows_and_indexes(user):
    out = db("stats")
    assert "auth_user" in out
    assert "alchemy_site_apikey" in out


def test_analyze_refreshes_statistics():
    assert "refreshed" in db("analyze")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="FTS5 is the SQLite search index")
def test_analyze_merges_the_search_index_into_one_segment():
    from evals import services
    from evals.models import EvalResult
    from evals.search import search_q
    from tests.evals.factories import make_eval, result

    eval_ = make_eval(prompts=1)
    for test in range(6):  # a segment per batch
        services.add_results(eval=eval_, results=[result(test, output=f"needle {test}")])

    def segments() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT segid) FROM evals_result_fts_idx")
            return cursor.fetchone()[0]

    assert segments() > 1
    db("analyze")
    assert segments() == 1
    assert EvalResult.objects.filter(search_q("needle 4")).count() == 1


def test_restore_refuses_without_confirmation(tmp_path):
    with pytest.raises(CommandError, match="--yes"):
        call_command("db", "restore", str(tmp_path / "x.db"), stdout=StringIO())


def test_backup_refuses_to_overwrite_an_existing_file(tmp_path):
    existing = tmp_path / "exists.db"
    existing.write_text("keep me")
    with pytest.raises(CommandError, match="already exists"):
        call_command("db", "backup", str(existing), stdout=StringIO())
    assert existing.read_text() == "keep me"


def test_backup_of_the_live_database_is_a_valid_private_copy(tmp_path, user):
    dest = tmp_path / "copy.db"
    out = db("backup", str(dest))
    assert "backup written" in out
    assert dest.stat().st_size > 0
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    if connection.vendor == "sqlite":
        assert "ok" in db("integrity-check", "--file", str(dest))


WRITER = """
import sys, time
from django.db import connection, transaction
n = 0
while True:
    with transaction.atomic(), connection.cursor() as c:
        c.executemany("INSERT INTO rows (n, pad) VALUES (%s, %s)", [(n + i, "p" * 200) for i in range(50)])
    n += 50
    print(n, flush=True)
"""


def test_a_backup_taken_while_another_process_writes_has_every_committed_row(tmp_path):
    home = tmp_path / "home"
    run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE rows (n INTEGER PRIMARY KEY, pad TEXT)')",
        home,
    )
    writer = start_django(WRITER, home)
    try:
        # Wait (bounded by the line count, not a clock) until plenty has been committed.
        for _ in range(200):
            if int(writer.stdout.readline() or 0) >= 5000:
                break
        live = home / "alchemy.db"
        with sqlite3.connect(live, timeout=30) as con:
            committed_before = con.execute("SELECT COUNT(*) FROM rows").fetchone()[0]
        dest = dbcare.sqlite_backup(live, tmp_path / "during-writes.db")
    finally:
        writer.kill()
        writer.wait()
    assert dbcare.check_sqlite_file(dest).ok
    with sqlite3.connect(dest) as con:
        copied = con.execute("SELECT COUNT(*), MIN(n), MAX(n) FROM rows").fetchone()
    assert copied[0] >= committed_before
    assert copied[0] == copied[2] + 1  # no gaps: whole batches only


def test_restore_brings_back_the_rows_of_a_backup(tmp_path):
    home = tmp_path / "home"
    run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE notes (n INTEGER)')\n"
        "    c.execute('INSERT INTO notes VALUES (1), (2), (3)')",
        home,
    )
    backup = tmp_path / "notes-backup.db"
    run_django(
        f"from alchemy_site import dbcare; dbcare.backup(__import__('pathlib').Path({str(backup)!r}))",
        home,
    )
    run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n    c.execute('DELETE FROM notes')",
        home,
    )
    run_django(
        f"from django.core.management import call_command; call_command('db', 'restore', {str(backup)!r}, '--yes')",
        home,
    )
    out = run_django(
        "from django.db import connection\n"
        "with connection.cursor() as c:\n    c.execute('SELECT COUNT(*) FROM notes'); print(c.fetchone()[0])",
        home,
    ).stdout.strip()
    assert out == "3"


@pytest.mark.django_db(transaction=True)
def test_vacuum_reports_the_size_before_and_after():
    assert "vacuumed:" in db("vacuum")


@pytest.mark.django_db(transaction=True)
def test_vacuum_into_writes_a_compacted_copy(tmp_path):
    if connection.vendor != "sqlite":
        with pytest.raises(CommandError, match="SQLite only"):
            db("vacuum", "--into", str(tmp_path / "c.db"))
        return
    dest = tmp_path / "compact.db"
    assert "vacuumed into" in db("vacuum", "--into", str(dest))
    assert dbcare.check_sqlite_file(dest).ok


@pytest.mark.django_db(transaction=True)
def test_checkpoint_folds_the_wal(tmp_path):
    if connection.vendor != "sqlite":
        with pytest.raises(CommandError, match="SQLite"):
            db("checkpoint")
        return
    assert "checkpoint" in db("checkpoint")


def test_migrate_backs_up_an_existing_file_and_keeps_the_newest_five(tmp_path, settings):
    if connection.vendor != "sqlite":
        assert dbcare.backup_before_migrate() is None
        return
    settings.BACKUP_DIR = tmp_path / "backups"
    made = [dbcare.backup_before_migrate() for _ in range(7)]
    kept = sorted((tmp_path / "backups").glob("pre-migrate-*.db"))
    assert len(kept) == 5
    assert kept == sorted(made)[-5:]
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700


def test_migrate_on_a_fresh_database_takes_no_backup_and_an_upgrade_takes_one(tmp_path):
    from tests.procs import manage

    home = tmp_path / "home"
    first = manage("migrate", "--no-input", home=home)
    assert first.returncode == 0, first.stderr
    assert "Backed up" not in first.stdout
    rolled = manage("migrate", "alchemy_site", "zero", "--no-input", home=home)
    assert rolled.returncode == 0, rolled.stderr
    again = manage("migrate", "--no-input", home=home)
    assert again.returncode == 0, again.stderr
    assert "Backed up the database" in again.stdout
    assert len(list((home / "backups").glob("pre-migrate-*.db"))) == 2  # zero + re-apply
