"""alchemy_site.progress: the one progress bar the commands draw."""

from __future__ import annotations

from io import StringIO

from django.core.management.base import OutputWrapper

from alchemy_site import progress
from alchemy_site.progress import ProgressBar


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_every_tenth_of_the_way_and_the_last():
    out = StringIO()
    bar = ProgressBar(OutputWrapper(out), total=1000, label="reembed")
    for _ in range(1000):
        bar.advance(1)
    bar.finish()

    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("reembed [##----------------------] 100/1,000 10% | ")
    assert lines[-1].startswith("reembed [########################] 1,000/1,000 100% | ")
    assert "\r" not in out.getvalue()


def test_a_terminal_is_redrawn_in_place_at_most_every_redraw_interval(monkeypatch):
    clock = iter(range(100))
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock) / 32)
    out = Terminal()
    bar = ProgressBar(OutputWrapper(out), total=50)
    for done in range(1, 51):
        bar.update(done)
    bar.finish()

    frames = out.getvalue().split("\r")[1:]
    # The clock moves 1/32 s a call: a frame every fourth call (0.125 s ≥ REDRAW_S, three
    # calls are not), and always the finished one.
    assert [frame.split()[1] for frame in frames] == [f"{n}/50" for n in (*range(4, 49, 4), 50)]
    assert frames[-1].startswith("[########################] 50/50 100% | ")
    assert out.getvalue().endswith("\n")


def test_the_caller_s_note_rate_and_eta_are_on_the_line(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = StringIO()
    bar = ProgressBar(OutputWrapper(out))
    bar.update(5, 20, note="pass 80%")

    assert out.getvalue() == ("[######------------------] 5/20 25% | pass 80% | 0.5/s | ETA 0:30\n")


def test_a_disabled_or_empty_bar_writes_nothing():
    out = StringIO()
    ProgressBar(OutputWrapper(out), total=10, enabled=False).advance(10)
    ProgressBar(OutputWrapper(out), total=0).advance(1)
    assert out.getvalue() == ""
