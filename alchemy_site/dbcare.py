"""Database care: integrity checks, vacuum, analyze, stats, backup, restore, checkpoint.

Plain functions used by `manage.py db` and `manage.py migrate`; each works on the
configured database and knows the SQLite and PostgreSQL ways of doing its job.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import connection

from alchemy_site.errors import ServiceError
from alchemy_site.home import FILE_MODE, ensure_private_dir

Progress = Callable[[int, int], None]


class DatabaseCareError(ServiceError):
    pass


@dataclass
class IntegrityReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class TableStats:
    name: str
    rows: int
    bytes: int | None
    indexes: list[str]


def is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def sqlite_path() -> Path:
    return Path(str(connection.settings_dict["NAME"]))


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# --- integrity ------------------------------------------------------------------


def check_sqlite_file(path: Path) -> IntegrityReport:
    """Integrity + foreign-key check of any SQLite file (the live one or a backup)."""
    report = IntegrityReport()
    if not path.exists():
        report.problems.append(f"{path} does not exist")
        return report
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        report.problems.append(f"cannot open {path}: {exc}")
        return report
    try:
        rows = [r[0] for r in con.execute("PRAGMA integrity_check")]
        report.checked.append("integrity_check")
        if rows != ["ok"]:
            report.problems.extend(f"integrity: {row}" for row in rows)
        for table, rowid, parent, _fk in con.execute("PRAGMA foreign_key_check"):
            report.problems.append(
                f"foreign key: {table} row {rowid} points at a missing {parent} row"
            )
        report.checked.append("foreign_key_check")
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"integrity: {exc}")
    finally:
        con.close()
    return report


def orphan_checks() -> IntegrityReport:
    """Rows whose foreign key points nowhere, checked per relation with a LEFT JOIN."""
    report = IntegrityReport()
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            for fk in model._meta.concrete_fields:
                if not fk.is_relation or not fk.many_to_one:
                    continue
                target = fk.related_model._meta
                child, column = model._meta.db_table, fk.column
                parent, pk = target.db_table, fk.target_field.column
                cursor.execute(
                    f"SELECT COUNT(*) FROM {qn(child)} c LEFT JOIN {qn(parent)} p "
                    f"ON c.{qn(column)} = p.{qn(pk)} "
                    f"WHERE c.{qn(column)} IS NOT NULL AND p.{qn(pk)} IS NULL"
                )
                (count,) = cursor.fetchone()
                if count:
                    report.problems.append(
                        f"foreign key: {count} row(s) of {child}.{column} point at missing {parent} rows"
                    )
        report.checked.append("orphaned rows")
    return report


def integrity_check(path: Path | None = None) -> IntegrityReport:
    if path is not None:
        return check_sqlite_file(path)
    if is_sqlite():
        connection.close()  # the check opens the file itself, read-only
        return check_sqlite_file(sqlite_path())
    return orphan_checks()


# --- maintenance ------------------------------------------------------------------


def vacuum(into: Path | None = None) -> tuple[int, int]:
    """VACUUM the database (or write a compacted copy). Returns bytes before and after."""
    if is_sqlite():
        path = sqlite_path()
        before = file_size(path) + file_size(path.with_name(path.name + "-wal"))
        with connection.cursor() as cursor:
            if into is not None:
                if into.exists():
                    raise DatabaseCareError(f"{into} already exists; choose a new path.")
                cursor.execute("VACUUM INTO %s", [str(into)])
                os.chmod(into, FILE_MODE)
                return before, file_size(into)
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, file_size(path) + file_size(path.with_name(path.name + "-wal"))
    if into is not None:
        raise DatabaseCareError("--into works on SQLite only; use `db backup` on PostgreSQL.")
    before = postgres_size()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    return before, postgres_size()


def postgres_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return int(cursor.fetchone()[0])


def analyze() -> None:
    from evals import search  # the results' free-text index, an evals concern

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        if is_sqlite():
            cursor.execute("PRAGMA optimize")
    search.optimize()


def checkpoint() -> tuple[int, int, int]:
    """WAL checkpoint (TRUNCATE): returns (busy, wal frames, frames checkpointed)."""
    if not is_sqlite():
        raise DatabaseCareError("checkpoint is a SQLite operation; PostgreSQL checkpoints itself.")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, log, done = cursor.fetchone()
    return int(busy), int(log), int(done)


def table_stats() -> tuple[list[TableStats], dict[str, int]]:
    """Per-table rows, bytes and indexes; plus file-level sizes."""
    tables = sorted(connection.introspection.table_names())
    qn = connection.ops.quote_name
    out: list[TableStats] = []
    with connection.cursor() as cursor:
        sizes = table_bytes(cursor, tables)
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM {qn(table)}")
            rows = int(cursor.fetchone()[0])
            constraints = connection.introspection.get_constraints(cursor, table)
            indexes = sorted(name for name, c in constraints.items() if c.get("index"))
            out.append(TableStats(table, rows, sizes.get(table), indexes))
        files = file_stats(cursor)
    return out, files


def table_bytes(cursor, tables: list[str]) -> dict[str, int]:
    if is_sqlite():
        try:
            cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
        except Exception:  # dbstat is a compile-time option of SQLite
            return {}
        return {name: int(size) for name, size in cursor.fetchall()}
    cursor.execute(
        "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
    )
    return {name: int(size) for name, size in cursor.fetchall()}


def file_stats(cursor) -> dict[str, int]:
    if not is_sqlite():
        return {"database_bytes": postgres_size()}
    path = sqlite_path()
    cursor.execute("PRAGMA page_size")
    page_size = int(cursor.fetchone()[0])
    cursor.execute("PRAGMA freelist_count")
    free_pages = int(cursor.fetchone()[0])
    return {
        "file_bytes": file_size(path),
        "wal_bytes": file_size(path.with_name(path.name + "-wal")),
        "free_bytes": free_pages * page_size,
        "page_size": page_size,
    }


# --- backup and restore ---------------------------------------------------------------


def backup(dest: Path, *, progress: Progress | None = None) -> Path:
    """A consistent online copy while writers run."""
    if dest.exists():
        raise DatabaseCareError(f"{dest} already exists; choose a new path or remove it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if is_sqlite():
        return sqlite_backup(sqlite_path(), dest, progress=progress)
    return postgres_dump(dest)


def sqlite_backup(source: Path, dest: Path, *, progress: Progress | None = None) -> Path:
    fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    src = sqlite3.connect(source, timeout=settings.SQLITE_BUSY_TIMEOUT)
    dst = sqlite3.connect(dest)
    try:

        def report(status: int, remaining: int, total: int) -> None:
            if progress is not None:
                progress(total - remaining, total)

        # pages=-1 copies in one step: a reader's snapshot, so writers that commit
        # meanwhile neither restart the copy nor leak into it.
        src.backup(dst, pages=-1, progress=report)
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        dst.close()
        dest.unlink(missing_ok=True)
        raise DatabaseCareError(f"backup failed: {exc}") from exc
    finally:
        src.close()
    dst.close()
    return dest


def postgres_dump(dest: Path) -> Path:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise DatabaseCareError(
            "pg_dump was not found on PATH; install the PostgreSQL client tools "
            "(apt-get install postgresql-client) and run again."
        )
    subprocess.run(
        [pg_dump, "--format=custom", "--file", str(dest), "--dbname", postgres_dsn()],
        check=True,
        capture_output=True,
        env=postgres_env(),
    )
    os.chmod(dest, FILE_MODE)
    return dest


def postgres_dsn() -> str:
    s = connection.settings_dict
    return f"host={s.get('HOST') or 'localhost'} port={s.get('PORT') or 5432} dbname={s['NAME']} user={s.get('USER') or ''}"


def postgres_env() -> dict[str, str]:
    env = dict(os.environ)
    if connection.settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = connection.settings_dict["PASSWORD"]
    return env


def restore(source: Path) -> None:
    """Replace the live database's contents with a backup's."""
    if not source.exists():
        raise DatabaseCareError(f"{source} does not exist.")
    if is_sqlite():
        report = check_sqlite_file(source)
        if not report.ok:
            raise DatabaseCareError(f"{source} is not a sound SQLite backup: {report.problems[0]}")
        connection.close()
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(sqlite_path(), timeout=settings.SQLITE_BUSY_TIMEOUT)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        return
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise DatabaseCareError("pg_restore was not found on PATH; install postgresql-client.")
    connection.close()
    result = subprocess.run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--dbname",
            postgres_dsn(),
            str(source),
        ],
        capture_output=True,
        text=True,
        env=postgres_env(),
    )
    if result.returncode != 0:
        raise DatabaseCareError(f"pg_restore failed: {result.stderr.strip()[:500]}")


def backup_before_migrate() -> Path | None:
    """Copy an existing SQLite file into ALCHEMY_HOME/backups, keeping the newest few."""
    if not is_sqlite():
        return None
    path = sqlite_path()
    if not path.exists() or file_size(path) == 0:
        return None
    folder = ensure_private_dir(Path(settings.BACKUP_DIR))
    stamp = datetime.now().astimezone().strftime("%Y%m%dT%H%M%S%f")
    dest = sqlite_backup(path, folder / f"pre-migrate-{stamp}.db")
    old = sorted(folder.glob("pre-migrate-*.db"))
    for stale in old[: -settings.BACKUPS_KEPT]:
        stale.unlink(missing_ok=True)
    return dest
