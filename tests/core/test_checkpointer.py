"""The WAL is folded into the database file on a thread of its own after a batch commits,
not in the writer's commit (alchemy_site.sqlite.Checkpointer)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from django.db import connection

from alchemy_site import sqlite as alchemy_sqlite
from alchemy_site.errors import Invalid
from evals import services
from tests.evals.factories import grid, make_eval
from tests.tracing.factories import export_of, otlp_span
from tracing.services import ingest_request

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's WAL; PostgreSQL checkpoints by itself"
)


def wal_pages_waiting(path: Path) -> int:
    """Pages in the WAL not yet in the database file, read without checkpointing: a
    reader's snapshot sees the WAL's end (mxFrame) and how far it is folded in (nBackfill)
    in the -shm index; both are 32-bit words at known offsets (SQLite's WAL format)."""
    header = Path(f"{path}-shm").read_bytes()[:136]
    max_frame = int.from_bytes(header[16:20], "little")  # WalIndexHdr.mxFrame
    backfilled = int.from_bytes(header[96:100], "little")  # WalCkptInfo.nBackfill
    return max_frame - backfilled


def start_from_an_empty_wal() -> Path:
    alchemy_sqlite.checkpointer.last.clear()
    connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return alchemy_sqlite.database_file(connection)


def assert_folded_in_by_the_thread(path: Path) -> None:
    """The WAL gets wholly folded in, by the thread: it holds fewer pages than the writer's
    own commit checkpoints past, so nothing else did it."""
    deadline = time.monotonic() + 10
    while wal_pages_waiting(path) and time.monotonic() < deadline:
        time.sleep(0.01)

    assert wal_pages_waiting(path) == 0
    busy, pages, folded = alchemy_sqlite.checkpointer.last[path]
    assert busy == 0 and 0 < folded == pages < alchemy_sqlite.AUTOCHECKPOINT_PAGES


@pytest.mark.django_db(transaction=True)
def test_a_stored_batch_is_folded_into_the_file_by_the_checkpointer_thread():
    eval_ = make_eval(prompts=2)
    path = start_from_an_empty_wal()

    services.add_results(eval=eval_, results=grid(300, prompts=2))

    assert_folded_in_by_the_thread(path)


@pytest.mark.django_db(transaction=True)
def test_stored_spans_are_folded_in_by_the_checkpointer_thread_too():
    path = start_from_an_empty_wal()

    spans = [otlp_span("ab" * 16, f"{i:016x}", f"step {i}") for i in range(1, 200)]
    ingest_request(request=export_of(*spans))

    assert_folded_in_by_the_thread(path)


@pytest.mark.django_db(transaction=True)
def test_a_failed_batch_asks_for_no_checkpoint():
    eval_ = make_eval(prompts=1)
    alchemy_sqlite.checkpointer.last.clear()
    with pytest.raises(Invalid, match="testIdx"):
        services.add_results(eval=eval_, results=[{"promptIdx": 0, "testIdx": -1}])
    time.sleep(alchemy_sqlite.Checkpointer.INTERVAL * 2)
    assert alchemy_sqlite.checkpointer.last == {}


def test_a_database_that_is_gone_is_skipped_and_not_created(tmp_path):
    missing = tmp_path / "gone.db"

    assert alchemy_sqlite.checkpoint_passive(missing) is None
    assert not missing.exists()


def test_a_database_that_is_not_in_wal_mode_is_checkpointed_as_a_no_op(tmp_path):
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()

    assert alchemy_sqlite.checkpoint_passive(plain) == (0, -1, -1)


def test_a_forked_child_gets_a_checkpointer_of_its_own():
    alchemy_sqlite.checkpointer.soon(Path("/nonexistent/alchemy.db"))
    parent = alchemy_sqlite.checkpointer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh checkpointer, no thread until it writes
        fresh = alchemy_sqlite.checkpointer
        os.write(write, b"1" if fresh is not parent and fresh.thread is None else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert parent.thread is not None and parent.thread.is_alive()


def test_the_thread_keeps_going_after_a_checkpoint_fails_unexpectedly(tmp_path, monkeypatch):
    checkpointer = alchemy_sqlite.Checkpointer()
    good = tmp_path / "good.db"
    sqlite3.connect(good).execute("PRAGMA journal_mode=WAL").connection.close()
    real = alchemy_sqlite.checkpoint_passive

    def failing_once(path):
        monkeypatch.setattr(alchemy_sqlite, "checkpoint_passive", real)
        raise RuntimeError("disk went away")

    monkeypatch.setattr(alchemy_sqlite, "checkpoint_passive", failing_once)
    checkpointer.soon(good)
    time.sleep(checkpointer.INTERVAL * 2)
    checkpointer.soon(good)
    deadline = time.monotonic() + 5
    while good not in checkpointer.last and time.monotonic() < deadline:
        time.sleep(0.01)

    assert checkpointer.thread.is_alive()
    assert checkpointer.last[good] == (0, 0, 0)
