"""Login with a brake on password guessing."""

from __future__ import annotations

import hashlib
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def attempts_key(request: HttpRequest) -> str:
    who = request.POST.get("username", "").strip().lower()
    where = request.META.get("REMOTE_ADDR", "")
    digest = hashlib.sha256(f"{where}|{who}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView; after too many failures for one address and username, 429."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        key = attempts_key(request)
        if cache.get(key, 0) >= settings.LOGIN_MAX_FAILURES:
            return render(
                request,
                "registration/login.html",
                {"form": self.get_form(), "locked": True, "next": request.POST.get("next", "")},
                status=HTTPStatus.TOO_MANY_REQUESTS,
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = attempts_key(self.request)
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(attempts_key(self.request))
        return super().form_valid(form)
