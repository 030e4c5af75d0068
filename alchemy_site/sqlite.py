"""SQLite connection set-up: every connection gets the same pragmas."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
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
# WAL pages past which a committing writer checkpoints itself: a backstop, as the
# Checkpointer thread folds the WAL in after each batch. At SQLite's 1,000 (~3 batches of
# 1,000 results) writers kept doing it: the WAL is restarted from its start only when it
# is wholly folded in as a write begins, which the thread, a few ms behind, often missed.
AUTOCHECKPOINT_PAGES = 4000
PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    "PRAGMA temp_store=MEMORY",
    f"PRAGMA mmap_size={MMAP_BYTES}",
    f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
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


class Checkpointer:
    """Folds a database's WAL into its file on a thread of its own, after bulk writes.

    SQLite checkpoints in the committing writer by default (once the WAL holds 1,000
    pages): every few batches a commit also copied their pages into the database file
    and synced it, ~4 of the ~6 ms a 1,000-result batch's commit took. Asked after a
    batch commits (`soon`), this thread runs a PASSIVE checkpoint instead, which never
    waits for or blocks writers and readers, at most every INTERVAL seconds, so a stream
    of batches is folded in a few at a time while the writer prepares the next.
    SQLite's own checkpoint stays as the backstop: a writer that finds the WAL past
    AUTOCHECKPOINT_PAGES still does it itself (only what this thread has not done yet).
    """

    INTERVAL = 0.05

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted = threading.Event()
        self.paths: set[Path] = set()
        self.thread: threading.Thread | None = None
        # Each database's last checkpoint here: (busy, WAL pages, pages folded in).
        self.last: dict[Path, tuple[int, int, int] | None] = {}

    def soon(self, path: Path) -> None:
        with self.lock:
            self.paths.add(path)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="sqlite-checkpointer", daemon=True
                )
                self.thread.start()
        self.wanted.set()

    def _run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            with self.lock:
                paths, self.paths = self.paths, set()
            for path in paths:
                try:
                    self.last[path] = checkpoint_passive(path)
                except Exception:  # noqa: BLE001 - never let one failure stop the thread
                    logger.exception("background checkpoint of %s failed", path)
            time.sleep(self.INTERVAL)


def checkpoint_passive(path: Path) -> tuple[int, int, int] | None:
    """A PASSIVE checkpoint of `path` on a connection of its own, opened for it and closed
    (no file is held open between checkpoints): (busy, WAL pages, pages folded in), which
    is (0, -1, -1) for a database not in WAL mode, or None when it could not run (the file
    is gone, or locked). Never raises."""
    try:
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=0, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
    except sqlite3.Error:
        return None  # removed meanwhile (a test's database)
    try:
        conn.execute("PRAGMA synchronous=NORMAL")
        busy, pages, folded = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy, pages, folded
    except sqlite3.Error as exc:
        logger.debug("background checkpoint of %s skipped: %s", path, exc)
        return None
    finally:
        conn.close()


checkpointer = Checkpointer()


def _forget_checkpointer_in_child() -> None:
    """A forked child has no copy of the thread, and its lock may have been held at the
    fork: it gets a checkpointer of its own, started when it first writes."""
    global checkpointer
    checkpointer = Checkpointer()


os.register_at_fork(after_in_child=_forget_checkpointer_in_child)


def checkpoint_soon(connection) -> None:
    """Ask this process's checkpointer to fold `connection`'s WAL in soon (a SQLite file
    in WAL mode; nothing elsewhere). Called after a bulk write commits."""
    if connection.vendor != "sqlite" or settings.DISABLE_WAL:
        return
    path = database_file(connection)
    if path is not None:
        checkpointer.soon(path)
