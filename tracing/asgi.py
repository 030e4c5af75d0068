"""An ASGI app that serves only the OTLP routes (/v1/*) of the Django project.

`manage.py otlp_receiver` runs it on port 4318, the endpoint OpenTelemetry SDKs
use by default, without exposing pages or the API on that port.
"""

from __future__ import annotations

from django.core.asgi import get_asgi_application

OTLP_PREFIX = "/v1/"


class OtlpOnly:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OTLP_PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and lifespan: nothing to serve here
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"Only the OTLP receiver (/v1/traces) is served on this port.\n",
            }
        )


def otlp_application():
    return OtlpOnly(get_asgi_application())
