"""The signal file: `<eval id>:<ISO timestamp>` in settings.SIGNAL_FILE, replaced atomically.

Writers touch it after each committed batch; a watcher (dashboard side) reacts to changes.
Eval ids contain colons (`eval-XYZ-2025-01-13T10:30:45`), and so does the timestamp, so
the reader splits from the end: the first colon whose remainder parses as a timestamp.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone


def write_signal(eval_id: str, when: datetime | None = None) -> None:
    """Replace the signal file with `<eval_id>:<ISO timestamp>` (never a half-written file).

    Written to a file of this thread's own beside it, then renamed over it: a few system
    calls (tempfile.mkstemp's random names and the directory check cost ~0.5 ms, which
    every stored batch paid).
    """
    path = Path(settings.SIGNAL_FILE)
    stamp = (when or timezone.now()).isoformat()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{eval_id}:{stamp}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_signal(text: str) -> tuple[str, datetime] | None:
    """Split `<eval id>:<ISO timestamp>`; None when the text holds no such pair."""
    text = text.strip()
    start = 0
    while (colon := text.find(":", start)) != -1:
        eval_id, rest = text[:colon], text[colon + 1 :]
        start = colon + 1
        if not eval_id or not rest[:4].isdigit():
            continue
        try:
            when = datetime.fromisoformat(rest.replace("Z", "+00:00"))
        except ValueError:
            continue
        return eval_id, when
    return None


def read_signal() -> tuple[str, datetime] | None:
    """The last signal written, or None when there is none (or it is unreadable)."""
    try:
        return parse_signal(Path(settings.SIGNAL_FILE).read_text(encoding="utf-8"))
    except OSError:
        return None
