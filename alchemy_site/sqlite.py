"""SQLite connection set-up: every connection gets the same pragmas."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from alchemy_site.home import FILE_MODE

logger = logging.getLogger(__name__)

# Negative cache_size is in KiB: 64 MiB of page cache per connection.
CACHE_KIB = 65536
MMAP_BYTES = 268435456
# What a bulk writer keeps (`bulk_write_pragmas`).
BULK_CACHE_KIB = 16384
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    "PRAGMA temp_store=MEMORY",
    f"PRAGMA mmap_size={MMAP_BYTES}",
)


@contextlib.contextmanager
def bulk_write_pragmas(connection) -> Iterator[None]:
    """A smaller page cache, no memory map and on-disk temporary files while one
    connection writes a large batch.

    A bulk write (an import) touches each page about once and moves on, so a big cache
    only fills up with pages it will not read again: at 1,000,000 imported results the
    import's peak memory was 310 MB with 64 MiB of cache and 225 MB with 16 MiB. Mapped
    pages count as the process's memory too, and the search index's merges read old
    segments of the whole file: into a database that already held 1.1M results, the
    1M-result import peaked at 374 MB with the 256 MiB map.

    An import is one transaction. Its add_results batches each were a savepoint, whose
    sub-journal keeps the first-touched content of every page the batch changes that was
    there before it; with temp_store=MEMORY that journal was process memory, and a batch
    that triggered a search-index merge took the 1M-result import in the full bench to
    348 MB against 194 MB for 100k. add_results now takes no savepoint inside a caller's
    transaction; temp_store=FILE still keeps whatever temporary storage a bulk write
    needs (sorts, a sub-journal) out of the process, spilled to a file past 64 KiB (a
    scratch savepoint rewriting 200 MB of pages: 237 MB peak in memory, 33 MB spilled).
    """
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        cursor.execute("PRAGMA mmap_size=0")
        # SQLite refuses to change it inside a transaction (a caller's, or a test's).
        spill = not connection.in_atomic_block
        if spill:
            cursor.execute("PRAGMA temp_store=FILE")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            if spill:
                cursor.execute("PRAGMA temp_store=MEMORY")


def database_file(connection) -> Path | None:
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:") or not name:
        return None
    return Path(name)


@receiver(connection_created, dispatch_uid="alchemy_site.sqlite.configure")
def configure_sqlite(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.execute(f"PRAGMA busy_timeout={int(settings.SQLITE_BUSY_TIMEOUT * 1000)}")
    path = database_file(connection)
    wanted = "delete" if settings.DISABLE_WAL else "wal"
    if path is not None:
        mode = raw.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]
        if mode.lower() != wanted:
            # Network filesystems often cannot share the WAL index; keep working.
            logger.warning(
                "SQLite journal_mode=%s could not be set on %s (got %s); "
                "set ALCHEMY_DISABLE_WAL=1 to silence this.",
                wanted,
                path,
                mode,
            )
        if path.exists() and (path.stat().st_mode & 0o777) != FILE_MODE:
            path.chmod(FILE_MODE)
    for pragma in PRAGMAS:
        raw.execute(pragma)
