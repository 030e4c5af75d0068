"""Signal-file write → websocket message at a connected client, through the real server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from evals.signal import write_signal
from tests.bench.common import Context, Figure, Timing, log

GAP_SECONDS = 0.5  # longer than the watcher's 250 ms debounce: each write is its own message


class WebSocket:
    """The least client that reads server text frames (server frames are never masked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, cookie: str) -> WebSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n").encode()
        )  # fmt: skip
        status = await reader.readline()
        if b" 101 " not in status:
            raise RuntimeError(f"websocket upgrade refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    async def receive(self) -> dict[str, Any]:
        while True:
            head = await self.reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(length)
            if opcode == 0x8:
                raise RuntimeError(f"websocket closed: {payload!r}")
            if opcode == 0x1:
                return json.loads(payload)

    def close(self) -> None:
        self.writer.close()


def session_cookie(username: str) -> str:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


async def _latencies(port: int, eval_id: str, cookie: str, rounds: int) -> list[float]:
    socket = await WebSocket.connect(port, f"/ws/evals/{eval_id}/", cookie)
    try:
        await asyncio.wait_for(socket.receive(), 10)  # the greeting snapshot
        await asyncio.sleep(1.0)  # the watcher starts on first connect
        samples: list[float] = []
        for number in range(rounds + 1):
            t0 = time.perf_counter()
            write_signal(eval_id)
            await asyncio.wait_for(socket.receive(), 10)
            if number:  # the first round warms the watcher up
                samples.append(time.perf_counter() - t0)
            await asyncio.sleep(GAP_SECONDS)
        return samples
    finally:
        socket.close()


def measure_live(ctx: Context) -> None:
    assert ctx.server is not None
    cookie = session_cookie(ctx.username)
    samples = asyncio.run(
        _latencies(ctx.server.port, ctx.big_eval_id, cookie, ctx.scale.live_rounds)
    )
    timing = Timing(samples)
    log(f"live: {len(samples)} messages")
    ctx.add(Figure("live", "signal-file write → websocket message", timing.p95_ms, "ms p95",
                   "p95 ≤ 400", ok=timing.p95_ms <= 400, detail=timing.summary()))  # fmt: skip
