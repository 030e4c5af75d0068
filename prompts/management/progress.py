"""A small text progress bar for long command work: counts, percentage and rate."""

from __future__ import annotations

import time

from django.core.management.base import OutputWrapper

WIDTH = 30


class ProgressBar:
    def __init__(self, out: OutputWrapper, *, total: int, label: str, enabled: bool = True) -> None:
        self.out = out
        self.total = total
        self.label = label
        self.enabled = enabled and total > 0
        self.done = 0
        self.started = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        fraction = min(self.done / self.total, 1.0)
        filled = int(WIDTH * fraction)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        bar = "#" * filled + "-" * (WIDTH - filled)
        self.out.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} ({fraction:.0%}, "
            f"{self.done / elapsed:,.0f}/s)",
            ending="",
        )
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("")
