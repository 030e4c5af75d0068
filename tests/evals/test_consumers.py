"""The live-update websockets, through the real ASGI stack (origin check, session auth)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings

from alchemy_site.asgi import application
from evals import services
from evals.signal import write_signal
from evals.watcher import stop_watcher
from tests.evals import factories

# Consumers reach the database from other threads: rows must be committed to be seen.
pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run an async scenario on a fresh loop, then stop the watcher it started."""

    async def wrapped() -> None:
        try:
            await scenario()
        finally:
            await stop_watcher()

    async_to_sync(wrapped)()


def session_cookie(client) -> tuple[bytes, bytes]:
    name = django_settings.SESSION_COOKIE_NAME
    return (b"cookie", f"{name}={client.cookies[name].value}".encode())


def socket(path: str, *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])


async def open_socket(path: str, client) -> WebsocketCommunicator:
    communicator = socket(path, session_cookie(client))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def prime(communicator: WebsocketCommunicator, eval_id: str) -> dict:
    """Signal until the watcher (started by the first connection) answers once."""
    for _ in range(20):
        write_signal(eval_id)
        if not await communicator.receive_nothing(timeout=0.5):
            return await communicator.receive_json_from()
    raise AssertionError("the watcher never reported a signal")


async def drain(communicator: WebsocketCommunicator, quiet: float = 0.6) -> list[dict]:
    """Every message until the socket stays quiet for `quiet` seconds.

    receive_nothing() waits without consuming; receive_output() would cancel the
    consumer on its timeout.
    """
    messages = []
    while not await communicator.receive_nothing(timeout=quiet):
        messages.append(await communicator.receive_json_from())
    return messages


@pytest.fixture
def running_eval():
    eval_ = factories.make_eval(prompts=2)
    services.add_results(eval=eval_, results=factories.grid(3, prompts=2))
    return eval_


@pytest.mark.parametrize("path", ["/ws/evals/", "/ws/evals/eval-abc-2025-01-13T10:30:45/"])
def test_an_anonymous_socket_is_closed_with_4401(path):
    async def scenario():
        communicator = socket(path)
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_output(timeout=2) == {
            "type": "websocket.close",
            "code": 4401,
        }

    run(scenario)


def test_a_socket_from_a_foreign_origin_is_refused(logged_in_client):
    async def scenario():
        communicator = WebsocketCommunicator(
            application,
            "/ws/evals/",
            headers=[(b"origin", b"http://evil.example"), session_cookie(logged_in_client)],
        )
        connected, _ = await communicator.connect()
        assert not connected

    run(scenario)


def test_a_socket_for_an_unknown_eval_is_closed_with_4404(logged_in_client):
    async def scenario():
        communicator = await open_socket(
            "/ws/evals/eval-nope-2025-01-13T10:30:45/", logged_in_client
        )
        assert (await communicator.receive_output(timeout=2))["code"] == 4404

    run(scenario)


def test_an_eval_socket_starts_with_the_current_counts(logged_in_client, running_eval):
    async def scenario():
        communicator = await open_socket(f"/ws/evals/{running_eval.id}/", logged_in_client)
        message = await communicator.receive_json_from(timeout=2)
        assert message["type"] == "eval.updated"
        assert message["eval_id"] == running_eval.id
        assert message["result_count"] == 6
        assert message["pass_count"] == 6
        assert message["status"] == "running"
        assert message["created_at"] == running_eval.created_at.isoformat()
        assert message["last_written_at"] == running_eval.last_written_at.isoformat()
        await communicator.disconnect()

    run(scenario)


def test_a_burst_of_100_signal_writes_arrives_as_a_handful_of_messages(
    logged_in_client, running_eval
):
    async def scenario():
        communicator = await open_socket(f"/ws/evals/{running_eval.id}/", logged_in_client)
        await communicator.receive_json_from(timeout=2)  # the greeting
        await prime(communicator, running_eval.id)
        await drain(communicator)

        for _ in range(100):
            write_signal(running_eval.id)
        messages = await drain(communicator)

        assert 1 <= len(messages) <= 5
        assert {m["eval_id"] for m in messages} == {running_eval.id}
        await communicator.disconnect()

    run(scenario)


def test_updates_carry_the_counts_after_the_write(logged_in_client, running_eval):
    async def scenario():
        communicator = await open_socket(f"/ws/evals/{running_eval.id}/", logged_in_client)
        await communicator.receive_json_from(timeout=2)
        await prime(communicator, running_eval.id)
        await drain(communicator)

        await database_sync_to_async(services.add_results)(
            eval=running_eval, results=[factories.result(3, 0, success=False)]
        )
        message = (await drain(communicator))[-1]

        assert message["result_count"] == 7
        assert message["fail_count"] == 1
        await communicator.disconnect()

    run(scenario)


def test_groups_per_eval_are_isolated(logged_in_client, running_eval):
    other = factories.make_eval(prompts=1)

    async def scenario():
        watched = await open_socket(f"/ws/evals/{running_eval.id}/", logged_in_client)
        bystander = await open_socket(f"/ws/evals/{other.id}/", logged_in_client)
        await watched.receive_json_from(timeout=2)
        await bystander.receive_json_from(timeout=2)
        await prime(watched, running_eval.id)
        await drain(watched)

        write_signal(running_eval.id)

        assert [m["eval_id"] for m in await drain(watched)] == [running_eval.id]
        assert await bystander.receive_nothing(timeout=0.6)
        await watched.disconnect()
        await bystander.disconnect()

    run(scenario)


def test_the_list_socket_hears_every_eval_and_deletions(logged_in_client, running_eval):
    other = factories.make_eval(prompts=1)

    async def scenario():
        listing = await open_socket("/ws/evals/", logged_in_client)
        await prime(listing, running_eval.id)
        await drain(listing)

        write_signal(other.id)
        assert [m["eval_id"] for m in await drain(listing)] == [other.id]

        await database_sync_to_async(services.delete_eval)(eval=other)
        assert (await drain(listing))[-1] == {
            "type": "eval.updated",
            "eval_id": other.id,
            "status": "deleted",
        }
        await listing.disconnect()

    run(scenario)


def test_one_watcher_serves_every_socket_of_a_process(logged_in_client, running_eval):
    from evals import watcher

    async def scenario():
        first = await open_socket("/ws/evals/", logged_in_client)
        started = watcher._running
        second = await open_socket(f"/ws/evals/{running_eval.id}/", logged_in_client)
        assert watcher._running is started
        await first.disconnect()
        await second.disconnect()

    run(scenario)


def test_the_websocket_paths_are_not_pages(logged_in_client):
    assert logged_in_client.get("/ws/evals/").status_code == HTTPStatus.NOT_FOUND
