"""A producer in a forked process: its messages in order, its failures raised here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals import forked

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not forked.available(), reason="needs os.fork (Linux)")


class Refused(Exception):
    pass


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("cannot cross")
        self.handle = lambda: None  # lambdas don't pickle


def test_messages_arrive_in_order_from_another_process():
    got = []

    def produce(send):
        for n in range(500):
            send((os.getpid(), n, "x" * 1000))

    forked.run(produce, got.append, forked=True)
    assert [n for _, n, _ in got] == list(range(500))
    assert {pid for pid, _, _ in got} != {os.getpid()}


def test_a_message_holding_one_object_twice_arrives_equal():
    shared = {"rows": [(1, "a", None, 2.5)], "nested": {"k": ["v"]}}
    got = []
    forked.run(lambda send: send(("batch", shared, [shared, shared])), got.append, forked=True)
    assert got == [("batch", shared, [shared, shared])]


def test_without_a_fork_the_producer_runs_here():
    got = []
    forked.run(lambda send: send(os.getpid()), got.append, forked=False)
    assert got == [os.getpid()]


def test_what_the_producer_raises_is_raised_here_after_what_it_sent():
    got = []

    def produce(send):
        send(1)
        raise Refused("result #3 is bad")

    with pytest.raises(Refused, match="result #3 is bad"):
        forked.run(produce, got.append, forked=True)
    assert got == [1]


def test_an_exception_that_cannot_be_pickled_arrives_as_its_traceback():
    def produce(send):
        raise Unpicklable()

    with pytest.raises(RuntimeError, match="(?s)reading process failed.*Unpicklable: cannot cross"):
        forked.run(produce, lambda item: None, forked=True)


def test_a_producer_that_dies_is_an_error_naming_its_exit_code():
    def produce(send):
        send("first")
        os._exit(3)

    with pytest.raises(RuntimeError, match="exit code 3"):
        forked.run(produce, lambda item: None, forked=True)


def test_a_consumer_that_fails_stops_the_producer():
    children = []

    def produce(send):
        while True:  # would never end on its own
            send(os.getpid())

    def consume(pid):
        children.append(pid)
        if len(children) == 3:
            raise Refused("already imported")

    with pytest.raises(Refused):
        forked.run(produce, consume, forked=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{children[0]}"):
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{children[0]}")  # gone, and reaped


def processes_running(script: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(script).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass  # it ended meanwhile
    return found


def test_a_producer_whose_parent_is_killed_stops_instead_of_waiting_for_it(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(
        "import os\n"
        "from evals import forked\n"
        "def produce(send):\n"
        "    while True:\n"
        "        send(b'x' * 65536)\n"
        "def consume(item):\n"
        "    os.kill(os.getpid(), 9)  # killed while the child is still sending\n"
        "forked.run(produce, consume, forked=True)\n"
    )
    parent = subprocess.run([sys.executable, str(script)], cwd=REPO, timeout=30, check=False)
    assert parent.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while processes_running(script) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_running(script) == []  # the orphaned child did not wait forever
