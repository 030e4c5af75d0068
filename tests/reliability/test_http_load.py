"""Short versions of `python -m tests.reliability.load` and `…otlp_flood` against daphne.

Both serve the session's shared database (SQLite, or PostgreSQL with DATABASE_URL)
from a daphne subprocess on 127.0.0.1 and are bounded in time and request count.
"""

from __future__ import annotations

import sys

import pytest

from tests.reliability.load import run_load
from tests.reliability.otlp_flood import run_flood


def test_mixed_http_load_answers_no_5xx_and_stores_every_accepted_write(proc_db):
    outcome = run_load(proc_db.home, clients=8, seconds=5, max_requests=2_000, tests=500,
                       env=proc_db.env)  # fmt: skip
    sys.stdout.write(f"\n[{proc_db.vendor}] {outcome.text}")
    tally = outcome.tally
    assert tally.server_errors() == 0, dict(tally.statuses)
    assert tally.failures == []
    assert set(tally.latencies) == {"table", "stats", "results", "otlp"}
    assert tally.results_accepted > 0
    assert outcome.stored_results == outcome.seeded + tally.results_accepted
    assert outcome.stored_spans == tally.spans_accepted


def test_an_otlp_flood_is_pushed_back_with_retry_after_and_accepted_spans_are_all_stored(proc_db):
    # A queue of one export: any two requests in flight together make one of them wait.
    flood, text = run_flood(proc_db.home, clients=8, requests=40, seconds=60, spans=1_000,
                            queue_max=1_000, env=proc_db.env)  # fmt: skip
    sys.stdout.write(f"\n[{proc_db.vendor}] {text}")
    assert flood.errors == []
    assert set(flood.statuses) <= {200, 429, 503}, dict(flood.statuses)
    assert flood.statuses[429] + flood.statuses[503] > 0
    assert flood.missing_retry_after == 0
    assert flood.accepted_spans > 0
    assert flood.stored_spans == flood.accepted_spans
    assert flood.stored_api_key == "[REDACTED]"


@pytest.mark.slow
def test_fifty_clients_for_a_minute_answer_no_5xx(proc_db):
    outcome = run_load(proc_db.home, clients=50, seconds=60, max_requests=200_000, env=proc_db.env)
    sys.stdout.write(f"\n[{proc_db.vendor}] {outcome.text}")
    assert outcome.tally.server_errors() == 0
    assert outcome.stored_results == outcome.seeded + outcome.tally.results_accepted
    assert outcome.stored_spans == outcome.tally.spans_accepted
