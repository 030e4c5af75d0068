"""Checks run before a server or a migration touches the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

# quick_check reads every page; above this size only the schema is read at start-up.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024


class DatabaseDamaged(ImproperlyConfigured):
    pass


def verify_database() -> None:
    """Refuse to start on a SQLite file that is not a sound database."""
    if connection.vendor != "sqlite":
        return
    path = Path(str(connection.settings_dict["NAME"]))
    if not path.exists() or path.stat().st_size == 0:
        return
    problem = sqlite_problem(path)
    if problem:
        raise DatabaseDamaged(
            f"The database {path} is damaged ({problem}). Nothing was changed. "
            f"Run `manage.py db integrity-check` for details, then `manage.py db restore "
            f"BACKUP --yes` from a backup (automatic ones are in {settings.BACKUP_DIR})."
        )


def sqlite_problem(path: Path) -> str | None:
    try:
        con = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=settings.SQLITE_BUSY_TIMEOUT
        )
        try:
            con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                result = con.execute("PRAGMA quick_check(1)").fetchone()[0]
                if result != "ok":
                    return result
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None
