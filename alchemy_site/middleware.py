from __future__ import annotations

from django.conf import settings
from django.contrib.auth import middleware


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's login-required default, except where a path authenticates itself.

    The JSON API and the OTLP receiver take API keys and answer 401 in JSON;
    redirecting them to an HTML login page would help no client.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(settings.LOGIN_EXEMPT_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
