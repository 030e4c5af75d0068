"""The ASGI server reuses its PostgreSQL connections: many requests, a few connections.

Django runs each request's sync code on a thread of its own under ASGI. With persistent
connections (CONN_MAX_AGE) each request opened one and left it open, behind its finished
thread, until the garbage collector came by; under load PostgreSQL refused new clients.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.servers import daphne

REQUESTS = 60
POOL_SIZE = 3


def sessions(database: str) -> int:
    """Connections ever made to `database`, ended ones (PostgreSQL counts them as they end)."""
    import psycopg

    from tests.reliability.conftest import _postgres_url

    with psycopg.connect(_postgres_url("postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", [database]
        ).fetchone()
    return row[0]


def test_many_requests_are_served_over_the_pool_s_few_connections(proc_db):
    if proc_db.vendor != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite connection is a file handle closed per request")
    database = proc_db.env["DATABASE_URL"].rsplit("/", 1)[1]
    before = sessions(database)
    server = daphne(proc_db.home, ALCHEMY_DB_POOL_SIZE=str(POOL_SIZE), **proc_db.env)
    with server as base, httpx.Client(base_url=base, timeout=10) as client:
        statuses = [client.get("/healthz").status_code for _ in range(REQUESTS)]
    # The server has stopped, so every connection it made has ended and is counted.
    made = sessions(database) - before

    assert statuses == [200] * REQUESTS
    # Its pool's connections, and one for the start-up checks and the first /healthz.
    assert 1 <= made <= POOL_SIZE + 1, f"{made} connections for {REQUESTS} requests"
