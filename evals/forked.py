"""Run a producer in a forked process and consume what it sends, in order, in this one.

An import reads and prepares its results in a child process while this process writes
them (evals.importers): parsing JSON and preparing rows is Python work that would
otherwise wait for the database, and the database work would wait for it. The child is
forked, so it starts with everything this process loaded (no second Django set-up), and
it never uses this process's database connections: it leaves with os._exit, closing
nothing. Messages cross a pipe, pickled; a full pipe blocks the child, so it runs at most
a message or two ahead and memory stays bounded. A message must not contain itself: it is
pickled without a memo (`_dumps`).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

Send = Callable[[Any], None]
_ITEM, _DONE, _RAISED, _CRASHED = "item", "done", "raised", "crashed"


def available() -> bool:
    """Whether producers can run in a forked child here (Linux; macOS's system libraries
    are not safe to use after a fork without exec)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def run(produce: Callable[[Send], None], consume: Send, *, forked: bool) -> None:
    """Call `consume` with each message `produce(send)` sends, in order.

    With `forked`, `produce` runs in a child process. An exception it raises is raised
    here (the same exception when it can be pickled); an exception `consume` raises stops
    the child. Either way the child is gone when this returns or raises.
    """
    if not forked:
        produce(consume)
        return
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(produce, receiver, sender), daemon=True)
    child.start()
    sender.close()  # the child's end: with it closed here, a dead child is EOF, not a hang
    inbox = _Inbox(receiver)
    try:
        while True:
            data = inbox.get()
            if data is None:
                child.join()
                raise RuntimeError(
                    f"The reading process ended (exit code {child.exitcode}) before it finished."
                )
            kind, payload = pickle.loads(data)
            if kind == _ITEM:
                consume(payload)
            elif kind == _DONE:
                return
            elif kind == _RAISED:
                raise payload
            else:
                raise RuntimeError(f"The reading process failed:\n{payload}")
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        inbox.close()


class _Inbox:
    """The child's messages, read off the pipe by a thread as soon as they are written.

    A message is a batch of several MB and the pipe holds 64 KiB: read only when the
    consumer asked for the next one, the child waited on its write while the consumer was
    busy, and the consumer then waited on the child. Read here, the child runs up to
    AHEAD messages ahead. The thread only moves bytes (reading releases the GIL); the
    consumer's thread unpickles them, so a big message never holds the GIL away from it.
    """

    AHEAD = 2

    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver
        self.queue: queue.Queue[bytes | None] = queue.Queue(self.AHEAD)
        self.closing = False
        self.thread = threading.Thread(target=self._read, name="forked-inbox", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while not self.closing:
                self.queue.put(self.receiver.recv_bytes())
        except (EOFError, OSError):  # the child is done, or the pipe was closed here
            self.queue.put(None)

    def get(self) -> bytes | None:
        """The next message's bytes; None when the child closed the pipe without more."""
        return self.queue.get()

    def close(self) -> None:
        """Once the child is gone: the thread reads to the end and stops (what it still
        holds, unread after a failure, is dropped)."""
        self.closing = True
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self.queue.get_nowait()
            self.thread.join(timeout=0.01)
        self.receiver.close()


def _child(produce: Callable[[Send], None], receiver: Any, sender: Any) -> None:
    # The parent's end, inherited: closed, a parent that dies (even by SIGKILL) leaves the
    # pipe without a reader, and this process's next send fails instead of blocking.
    receiver.close()
    # Ctrl-C reaches the whole process group: the parent handles it, rolls back and stops
    # this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        produce(lambda item: sender.send_bytes(_dumps((_ITEM, item))))
        sender.send((_DONE, None))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent stopped listening: it failed or was stopped, and says why
    except Exception as exc:
        _send_failure(sender, exc)
    except BaseException as exc:  # e.g. SystemExit from code it ran: still say what it was
        _send_failure(sender, exc, picklable=False)
    finally:
        sender.close()


def _dumps(message: Any) -> memoryview:
    """`message` pickled without a memo (Pickler.fast), which a message that contains
    itself would recurse on forever. A batch of prepared results is some 200,000 objects,
    none shared; memoizing each was most of the reader's pickling (timed on a batch of the
    bench's results: 1.9 → 0.55 µs a result, and 1.2 → 0.95 µs to unpickle in the parent)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(message)
    return buffer.getbuffer()


def _send_failure(sender: Any, exc: BaseException, *, picklable: bool = True) -> None:
    """The exception itself when it crosses a pipe intact, else its traceback as text."""
    message: tuple[str, Any] = (_CRASHED, "".join(traceback.format_exception(exc)))
    if picklable:
        try:
            pickle.loads(pickle.dumps(exc))
            message = (_RAISED, exc)
        except Exception:  # noqa: BLE001 - not picklable: the text says what it was
            pass
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sender.send(message)
