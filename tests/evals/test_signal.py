from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evals.signal import parse_signal, read_signal, write_signal

pytestmark = pytest.mark.django_db


def test_it_splits_an_eval_id_with_colons_from_the_timestamp():
    text = "eval-abc-2025-01-13T10:30:45:2025-01-13T10:31:02.123456+00:00"
    assert parse_signal(text) == (
        "eval-abc-2025-01-13T10:30:45",
        datetime(2025, 1, 13, 10, 31, 2, 123456, tzinfo=UTC),
    )


def test_it_accepts_a_zulu_timestamp():
    assert parse_signal("eval-x:2025-01-13T10:31:02Z")[0] == "eval-x"


@pytest.mark.parametrize("text", ["", "eval-abc", "eval-abc:not-a-time", ":2025-01-13T10:31:02"])
def test_it_returns_none_for_text_without_an_id_and_timestamp(text):
    assert parse_signal(text) is None


def test_written_signal_reads_back(settings):
    when = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    write_signal("eval-Q1z-2025-03-01T12:00:00", when)
    assert (
        settings.SIGNAL_FILE.read_text() == "eval-Q1z-2025-03-01T12:00:00:2025-03-01T12:00:00+00:00"
    )
    assert read_signal() == ("eval-Q1z-2025-03-01T12:00:00", when)
    assert [p.name for p in settings.SIGNAL_FILE.parent.iterdir()] == ["evalLastWritten"]
