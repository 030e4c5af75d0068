"""The per-process signal watcher: signal file (and, with Redis, direct publishes) → groups.

Writers replace `settings.SIGNAL_FILE` with `<eval id>:<timestamp>` after each committed
batch. One asyncio task per server process watches that file's directory (inotify through
watchfiles; the file is replaced, so its inode changes and the directory is what we watch),
collects the eval ids it sees for `DEBOUNCE_SECONDS`, looks up each eval's counts and status
in one round of queries, and `group_send`s one `eval.updated` message per eval to that
eval's group and to the list group.

With Redis, writers on other hosts publish to `SIGNALS_GROUP` (see `evals.live`); the
watcher is a member of it and feeds those ids into the same debounce. Group names carry a
per-process token so that each process's watcher notifies only its own consumers: with N
server processes sharing Redis, a client still gets one message per update, not N.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Sum
from watchfiles import Change, awatch

from evals.models import Eval, EvalPromptStats
from evals.services import effective_status
from evals.signal import read_signal

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.25
# Writers on other hosts publish here (only with Redis); every process's watcher listens.
SIGNALS_GROUP = "evals.signals"
# channels-redis forgets group members after a day; re-join well before that.
REJOIN_SECONDS = 3600
# Distinguishes this process's groups from other server processes sharing a Redis layer.
PROCESS_TOKEN = f"{os.getpid():x}{secrets.token_hex(3)}"

EVENT_TYPE = "eval.updated"


def list_group() -> str:
    return f"evals.list.{PROCESS_TOKEN}"


def eval_group(eval_id: str) -> str:
    """A valid group name for an eval: ids hold colons, which group names may not."""
    digest = hashlib.sha256(eval_id.encode("utf-8")).hexdigest()[:32]
    return f"eval.{digest}.{PROCESS_TOKEN}"


# --- the message ---------------------------------------------------------------------


def eval_snapshot(eval_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The `eval.updated` payload of each eval: counts from the aggregates, never a scan.

    Two queries for any number of evals. An id with no eval (deleted) gets status "deleted".
    """
    evals = {e.id: e for e in Eval.objects.filter(pk__in=eval_ids).only(
        "id", "status", "created_at", "last_written_at"
    )}  # fmt: skip
    totals = {
        row["eval_id"]: row
        for row in EvalPromptStats.objects.filter(eval_id__in=list(evals))
        .values("eval_id")
        .annotate(
            results=Sum("result_count"),
            passes=Sum("pass_count"),
            failures=Sum("fail_count"),
            errors=Sum("error_count"),
        )
        .order_by()
    }
    snapshots = {}
    for eval_id in eval_ids:
        eval_ = evals.get(eval_id)
        if eval_ is None:
            snapshots[eval_id] = {"type": EVENT_TYPE, "eval_id": eval_id, "status": "deleted"}
            continue
        row = totals.get(eval_id, {})
        snapshots[eval_id] = {
            "type": EVENT_TYPE,
            "eval_id": eval_id,
            "status": effective_status(eval_),
            "result_count": row.get("results") or 0,
            "pass_count": row.get("passes") or 0,
            "fail_count": row.get("failures") or 0,
            "error_count": row.get("errors") or 0,
            "last_written_at": eval_.last_written_at.isoformat() if eval_.last_written_at else None,
            # The list page calls an eval "new" only if it is newer than its top row.
            "created_at": eval_.created_at.isoformat(),
        }
    return snapshots


# --- the watcher ---------------------------------------------------------------------


@dataclass
class SignalWatcher:
    """Signals in, one debounced `eval.updated` per eval out."""

    signal_file: Path
    debounce: float = DEBOUNCE_SECONDS
    pending: dict[str, float] = field(default_factory=dict)
    flushes: int = 0
    _flush_task: asyncio.Task | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, eval_id: str) -> None:
        """Remember that `eval_id` changed; the first note of a quiet spell starts the clock."""
        self.pending[eval_id] = time.monotonic()
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.debounce)
        await self.flush()

    async def flush(self) -> None:
        """Send what is pending now: one message per eval, to its group and the list's."""
        if not self.pending:
            return
        eval_ids, self.pending = list(self.pending), {}
        self.flushes += 1
        try:
            snapshots = await database_sync_to_async(eval_snapshot)(eval_ids)
            layer = get_channel_layer()
            for eval_id, message in snapshots.items():
                await layer.group_send(eval_group(eval_id), message)
                await layer.group_send(list_group(), message)
        except Exception:
            # A failed round (database busy, Redis blip) must not end the watcher.
            logger.exception("Could not send live updates for %s", eval_ids)

    def read_file(self) -> None:
        signal = read_signal()
        if signal is not None:
            self.note(signal[0])

    async def watch_file(self) -> None:
        name = self.signal_file.name

        def only_signal(change: Change, path: str) -> bool:
            return change != Change.deleted and Path(path).name == name

        async for _changes in awatch(
            self.signal_file.parent,
            watch_filter=only_signal,
            # Small: each batch is a read of the file, so two evals written close together
            # are both seen; the 250 ms debounce of the messages is ours, in note().
            debounce=50,
            step=10,
            recursive=False,
            stop_event=self._stop,
        ):
            self.read_file()

    async def listen_layer(self) -> None:
        """Direct publishes from writers elsewhere (Redis only; see evals.live)."""
        layer = get_channel_layer()
        channel = await layer.new_channel()

        async def rejoin() -> None:
            while True:
                try:
                    await layer.group_add(SIGNALS_GROUP, channel)
                except Exception:
                    logger.warning("Could not join %s; retrying", SIGNALS_GROUP, exc_info=True)
                    await asyncio.sleep(5)
                    continue
                await asyncio.sleep(REJOIN_SECONDS)

        keeper = asyncio.get_running_loop().create_task(rejoin())
        pause = 0.5
        try:
            while True:
                try:
                    message = await layer.receive(channel)
                except Exception:
                    # Redis restarting or a dropped connection: the file watcher still
                    # covers this host; retry with backoff instead of dying.
                    logger.warning("Live updates from Redis paused", exc_info=True)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 30)
                    continue
                pause = 0.5
                eval_id = message.get("eval_id")
                if isinstance(eval_id, str) and eval_id:
                    self.note(eval_id)
        finally:
            keeper.cancel()

    async def run(self) -> None:
        try:
            # A TaskGroup: if one part fails, the other stops too and the next consumer
            # to connect starts a fresh watcher.
            async with asyncio.TaskGroup() as group:
                group.create_task(self.watch_file())
                if settings.REDIS_URL:
                    group.create_task(self.listen_layer())
        finally:
            self._stop.set()
            if self._flush_task is not None:
                self._flush_task.cancel()


# --- one per process -----------------------------------------------------------------

_lock = threading.Lock()
_running: tuple[asyncio.AbstractEventLoop, asyncio.Task, SignalWatcher] | None = None


def ensure_watcher() -> SignalWatcher:
    """Start this process's watcher unless it runs already (call from the event loop).

    Keyed by event loop: a server has one loop for its life; tests get a fresh loop per
    test and, with it, a fresh watcher.
    """
    global _running
    loop = asyncio.get_running_loop()
    with _lock:
        if _running is not None:
            running_loop, task, watcher = _running
            if running_loop is loop and not task.done():
                return watcher
        watcher = SignalWatcher(signal_file=Path(settings.SIGNAL_FILE))
        task = loop.create_task(watcher.run(), name="alchemy-signal-watcher")
        task.add_done_callback(_report_exit)
        _running = (loop, task, watcher)
        return watcher


def _report_exit(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("The signal watcher stopped", exc_info=task.exception())


async def stop_watcher() -> None:
    """Cancel this process's watcher (tests; a server simply exits)."""
    global _running
    with _lock:
        running, _running = _running, None
    if running is not None:
        _, task, _ = running
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
