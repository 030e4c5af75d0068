"""The one NinjaAPI: mounts each app's router and maps service errors to 4xx."""

from __future__ import annotations

import sys
from functools import wraps
from http import HTTPStatus

from django.db import DatabaseError, DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import BaseRenderer
from ninja.responses import NinjaJSONEncoder

from alchemy_site import fastjson
from alchemy_site.auth import api_auth
from alchemy_site.errors import ServiceError

# Paging bounds for every list endpoint: an OFFSET past a 64-bit integer is a database
# error (SQLite "datatype mismatch", PostgreSQL "bigint out of range"), and no table here
# comes near 2**31 rows.
MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 500


def require_api_auth(view):
    """Guard the OpenAPI schema and docs with the same auth as the endpoints."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        for auth in api_auth:
            if auth(request):
                return view(request, *args, **kwargs)
        return JsonResponse({"detail": "Unauthorized"}, status=HTTPStatus.UNAUTHORIZED)

    return wrapper


class FastJSONRenderer(BaseRenderer):
    """Responses through orjson: a 200-cell table page (136 kB) renders in 0.25 ms, not 1.4.

    Whatever orjson does not write itself (datetimes, pydantic models, Decimal) goes to
    ninja's own encoder, so the output is what ninja's JSONRenderer would send.
    """

    media_type = "application/json"

    def __init__(self) -> None:
        self.default = NinjaJSONEncoder().default

    def render(self, request: HttpRequest, data: object, *, response_status: int) -> bytes:
        return fastjson.dumps_bytes(data, self.default)


api = NinjaAPI(
    title="Alchemy API",
    version="1",
    description="Prompts, evals, blobs and traces. Authenticate with a session or "
    "`Authorization: Bearer <api key>` (create one with `manage.py create_api_key`).",
    auth=api_auth,
    urls_namespace="api",
    docs_decorator=require_api_auth,
    renderer=FastJSONRenderer(),
)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError):
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError):
    errors = exc.errors
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
    return api.create_response(
        request, {"detail": message, "errors": errors}, status=HTTPStatus.UNPROCESSABLE_ENTITY
    )


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(
        request,
        {"detail": "Unauthorized: log in or send Authorization: Bearer <api key>."},
        status=HTTPStatus.UNAUTHORIZED,
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(RecursionError)
def recursion_error(request: HttpRequest, exc: RecursionError):
    # Parsing or walking a deeply nested body: the client's input, not a server fault.
    return api.create_response(
        request, {"detail": "The request is nested too deeply."}, status=HTTPStatus.BAD_REQUEST
    )


def out_of_space(exc: DatabaseError) -> bool:
    """SQLite's "database or disk is full", PostgreSQL's "No space left on device"."""
    text = str(exc).lower()
    return "full" in text or "no space" in text


# SQLSTATEs of a PostgreSQL server that is there but takes no more work now: connection
# exceptions (08…), too many connections (53300), shutting down or starting up (57P01-03).
UNAVAILABLE_SQLSTATES = ("08", "53300", "57P01", "57P02", "57P03")
UNAVAILABLE_TEXTS = ("too many clients", "connection slots", "connection refused",
                     "connection failed", "starting up", "shutting down",
                     "couldn't get a connection")  # fmt: skip


def busy(exc: DatabaseError) -> bool:
    """The database can't take this request now, and the same request will do later:
    SQLite's write lock is held past busy_timeout, PostgreSQL refuses connections
    (max_connections reached, restarting, unreachable), or the connection pool stayed
    empty past its timeout."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return True
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return sqlstate.startswith(UNAVAILABLE_SQLSTATES) or any(t in text for t in UNAVAILABLE_TEXTS)


BUSY_MESSAGE = "The database is busy; nothing from this request was stored. Retry shortly."


@api.exception_handler(DatabaseError)
def database_error(request: HttpRequest, exc: DatabaseError):
    text = str(exc).lower()
    if out_of_space(exc):
        return JsonResponse(
            {
                "detail": "The database is out of space; nothing from this request was stored. "
                "Free disk space and retry."
            },
            status=HTTPStatus.INSUFFICIENT_STORAGE,
        )
    if isinstance(exc, DataError) and ("0x00" in text or "\\u0000" in text):
        # PostgreSQL text and jsonb can't hold NUL ("NUL (0x00) bytes", "\u0000 cannot be
        # converted to text"); RejectNulBytesMiddleware stops it in URLs, not in JSON bodies.
        return JsonResponse(
            {"detail": "Text values must not contain NUL (\\u0000) characters."},
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, DataError) and "out of range" in text:
        return JsonResponse(
            {"detail": "A number is out of range for the database; nothing was stored."},
            status=HTTPStatus.UNPROCESSABLE_ENTITY,
        )
    if busy(exc):
        return busy_response(request)
    raise exc


def busy_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: JSON for API and OTLP clients, text for a browser."""
    status, headers = HTTPStatus.SERVICE_UNAVAILABLE, {"Retry-After": "1"}
    if request.path.startswith(("/api/", "/v1/")):
        return JsonResponse({"detail": BUSY_MESSAGE}, status=status, headers=headers)
    return HttpResponse(
        BUSY_MESSAGE, status=status, headers=headers, content_type="text/plain; charset=utf-8"
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """The project's handler500: a busy database (raised by a page, or by middleware
    before any view ran) answers 503 with Retry-After; anything else is Django's 500.

    Django calls it while handling the exception, so sys.exception() is what was raised.
    """
    exc = sys.exception()
    if isinstance(exc, DatabaseError) and busy(exc):
        return busy_response(request)
    return defaults.server_error(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The project's handler404: a JSON 404 for unknown /api/ paths, Django's page elsewhere.

    A decoded `%2F` in an id lands here too, since no API route matches a slash in it.
    (With DEBUG on, Django shows its technical 404 page instead, as for every path.)
    """
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": f"No API endpoint at {request.path}."}, status=HTTPStatus.NOT_FOUND
        )
    return defaults.page_not_found(request, exception)


def mount_routers() -> None:
    from blobs.api import router as blobs_router
    from evals.api import router as evals_router
    from prompts.api import router as prompts_router
    from tracing.api import router as tracing_router

    api.add_router("/prompts", prompts_router)
    api.add_router("/evals", evals_router)
    api.add_router("/blobs", blobs_router)
    api.add_router("/traces", tracing_router)


mount_routers()
