from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth import middleware
from django.http import HttpRequest, HttpResponse, JsonResponse


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's login-required default, except where a path authenticates itself.

    The JSON API and the OTLP receiver take API keys and answer 401 in JSON;
    redirecting them to an HTML login page would help no client.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(settings.LOGIN_EXEMPT_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RejectNulBytesMiddleware:
    """Refuse a NUL byte in the path (404) or in a query or form field (400).

    PostgreSQL text can't hold NUL, so one reaching a query is a DataError (a 500), and
    no stored name or id contains one: turn such requests away before any view runs.
    Form fields are checked on pages only: the API and the OTLP receiver read the raw
    body, which parsing a multipart form here would consume (the API answers a NUL in
    a body with 422, see alchemy_site.api.database_error).
    """

    RAW_BODY_PREFIXES = ("/api/", "/v1/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self.refuse(
                request, HTTPStatus.NOT_FOUND, "No resource has a NUL byte in its path."
            )
        fields = [request.GET]
        if not request.path.startswith(self.RAW_BODY_PREFIXES):
            fields.append(request.POST)
        for data in fields:
            for key, values in data.lists():
                if "\x00" in key or any("\x00" in value for value in values):
                    return self.refuse(
                        request, HTTPStatus.BAD_REQUEST, f"Field {key!r} contains a NUL byte."
                    )
        return self.get_response(request)

    @staticmethod
    def refuse(request: HttpRequest, status: HTTPStatus, message: str) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=status)
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
