"""The commands' progress bar: done/total, percentage, rate and ETA, and a note of the
caller's (the evaluator's pass rate).

On a terminal it is redrawn in place, at most every REDRAW_S; written to a file or a pipe
(CI logs) it is a line every tenth of the way, so a log holds ten lines, not thousands.
"""

from __future__ import annotations

import time
from typing import Any

WIDTH = 24
REDRAW_S = 0.1


class ProgressBar:
    def __init__(self, out: Any, *, total: int = 0, label: str = "", enabled: bool = True) -> None:
        self.out = out
        self.total = total
        self.label = label
        self.enabled = enabled
        self.done = 0
        self.note = ""
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.last_tenth = 0
        self.drawn = False

    def advance(self, n: int) -> None:
        """`n` more done."""
        self.update(self.done + n)

    def update(self, done: int, total: int | None = None, note: str = "") -> None:
        """`done` of `total` (the one given before when None) are done now."""
        self.done = done
        if total is not None:
            self.total = total
        self.note = note
        if not self.enabled or self.total <= 0:
            return
        now = time.monotonic()
        finished = self.done >= self.total
        tenth = self.done * 10 // self.total
        if self.tty:
            if not finished and now - self.last_draw < REDRAW_S:
                return
        elif tenth == self.last_tenth:
            return
        self.last_draw, self.last_tenth, self.drawn = now, tenth, True
        self.out.write(("\r" if self.tty else "") + self.line(now), ending="" if self.tty else "\n")
        self.out.flush()

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        fraction = min(self.done / self.total, 1.0) if self.total else 0.0
        filled = int(WIDTH * fraction)
        bar = "#" * filled + "-" * (WIDTH - filled)
        rate = self.done / max(now - self.started, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        parts = [
            f"{self.label} [{bar}] {self.done:,}/{self.total:,} {fraction:.0%}".strip(),
            *([self.note] if self.note else []),
            f"{rate:,.1f}/s" if rate < 100 else f"{rate:,.0f}/s",
            f"ETA {int(eta) // 60}:{int(eta) % 60:02d}",
        ]
        return " | ".join(parts)

    def finish(self) -> None:
        """Ends the line a terminal bar was drawn on."""
        if self.enabled and self.tty and self.drawn:
            self.out.write("")
