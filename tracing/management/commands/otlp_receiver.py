from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve only the OTLP/HTTP receiver (/v1/traces, /v1/metrics, /v1/logs), by default on "
        "127.0.0.1:4318 where OpenTelemetry SDKs export unless told otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1)."
        )
        parser.add_argument("--port", type=int, default=4318, help="Port to bind (default 4318).")

    def handle(self, *args, host: str, port: int, **options) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from tracing.asgi import otlp_application

        self.stdout.write(
            f"OTLP receiver on http://{host}:{port}/v1/traces — send "
            "`Authorization: Bearer <api key>` (create one with `manage.py create_api_key`). "
            "Stop with Ctrl-C."
        )
        Server(
            application=otlp_application(),
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
        ).run()
