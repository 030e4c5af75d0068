from __future__ import annotations

from io import StringIO
from unittest import mock

from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.management import call_command

from tracing.asgi import OtlpOnly


def test_the_command_serves_the_otlp_app_on_the_requested_port():
    out = StringIO()
    with mock.patch("daphne.server.Server") as server:
        call_command("otlp_receiver", "--host", "0.0.0.0", "--port", "4319", stdout=out)

    kwargs = server.call_args.kwargs
    assert kwargs["endpoints"] == ["tcp:port=4319:interface=0.0.0.0"]
    assert isinstance(kwargs["application"], OtlpOnly)
    server.return_value.run.assert_called_once_with()
    assert "http://0.0.0.0:4319/v1/traces" in out.getvalue()


async def inner_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"inner"})


async def call(path: str) -> list[dict]:
    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    app = ApplicationCommunicator(OtlpOnly(inner_app), scope)
    await app.send_input({"type": "http.request", "body": b""})
    return [await app.receive_output(), await app.receive_output()]


def test_only_v1_paths_reach_django():
    assert async_to_sync(call)("/v1/traces")[1]["body"] == b"inner"
    assert async_to_sync(call)("/api/traces")[0]["status"] == 404
