"""Two daphne processes sharing Redis: a write on one host reaches sockets on the other.

Servers A and B share one database but not a signal file (each has its own ALCHEMY_HOME,
as two hosts would), so B can only learn of a write through Redis: add_results publishes
after commit (`evals.live.publish_update`) and B's watcher receives it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from urllib.parse import quote, urlparse

import pytest

from tests.e2e import servers

# channels-redis blocks 5 s in BZPOPMIN; redis-py ≥ 6 also times sockets out at 5 s by
# default, so the layer needs a longer socket timeout (see the report on settings).
REDIS_URL = "redis://127.0.0.1:6379/7"

pytestmark = pytest.mark.slow


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


async def listen(base: str, path: str, session: str, inbox: asyncio.Queue) -> asyncio.Task:
    """A minimal websocket client: text frames from the server land in `inbox`.

    Hand-rolled because no asyncio client library is a dependency (autobahn's is pinned to
    Twisted once daphne is imported in this process); the server side is real daphne.
    """
    url = urlparse(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {base}\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head

    async def frames() -> None:
        # Holds `writer`: a StreamWriter that is garbage-collected closes its socket.
        try:
            await read_frames()
        finally:
            writer.close()

    async def read_frames() -> None:
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)
            if first & 0x0F == 0x8:  # close
                inbox.put_nowait({"closed": int.from_bytes(payload[:2], "big")})
                return
            if first & 0x0F == 0x1:  # text
                inbox.put_nowait(json.loads(payload))

    return asyncio.get_running_loop().create_task(frames())


async def wait_for(inbox: asyncio.Queue, predicate, deadline: float = 10) -> dict:
    async with asyncio.timeout(deadline):
        while True:
            message = await inbox.get()
            assert "closed" not in message, message
            if predicate(message):
                return message


@pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable on 127.0.0.1:6379")
def test_a_write_elsewhere_reaches_a_socket_on_another_server_through_redis(tmp_path):
    shared = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "two-hosts-share-this-secret",
    }
    homes = {}
    for name in ("a", "b", "writer"):
        homes[name] = tmp_path / f"home-{name}"
        homes[name].mkdir(mode=0o700)
    servers.migrate(homes["a"], **shared)
    eval_id = servers.seed_eval(homes["writer"], tests=5, **shared)
    session = servers.session_key(homes["writer"], **shared)

    with servers.daphne(homes["a"], **shared) as a, servers.daphne(homes["b"], **shared) as b:

        async def scenario() -> tuple[dict, dict]:
            on_a, on_b = asyncio.Queue(), asyncio.Queue()
            path = f"/ws/evals/{quote(eval_id)}/"
            readers = [
                await listen(a, path, session, on_a),
                await listen(b, path, session, on_b),
            ]
            # The greeting: each socket starts with the current count.
            for inbox in (on_a, on_b):
                assert (await wait_for(inbox, lambda m: True))["result_count"] == 10
            await asyncio.to_thread(
                servers.append_results,
                homes["writer"],
                eval_id,
                start=5,
                stop=8,
                **shared,
            )
            grown = lambda m: m.get("result_count") == 16  # noqa: E731
            try:
                return await wait_for(on_a, grown), await wait_for(on_b, grown)
            finally:
                for task in readers:
                    task.cancel()

        on_a, on_b = asyncio.run(scenario())

    assert on_a["eval_id"] == on_b["eval_id"] == eval_id
    assert on_b["status"] == "running"
