"""API keys: creation, verification, and the ninja auth classes that use them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyHeader, HttpBearer, SessionAuth

from alchemy_site.models import ApiKey

KEY_PREFIX = "alc_"


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a plain digest (no salt, no stretching)
    # is as safe as a password hash here and fast enough to check per request.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiKey, str]:
    """Create a key for `user`; returns the row and the only copy of the clear key."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=prefix, hashed_key=hash_secret(secret))
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


def revoke_api_key(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


def verify_api_key(raw: str) -> ApiKey | None:
    """Return the active key matching `raw`, or None."""
    if not raw.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = raw[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix or not secret:
        return None
    key = ApiKey.objects.active().select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.hashed_key, hash_secret(secret)):
        return None
    now = timezone.now()
    interval = timedelta(seconds=settings.API_KEY_TOUCH_INTERVAL)
    # Touch last_used_at at most once per interval: a write per request would
    # serialise every API call behind SQLite's single write lock.
    if key.last_used_at is None or now - key.last_used_at >= interval:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def user_for_key(request: HttpRequest, raw: str):
    key = verify_api_key(raw.strip())
    if key is None:
        return None
    request.user = key.user
    request.api_key = key
    return key.user


class BearerKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return user_for_key(request, token)


class HeaderKeyAuth(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None):
        return user_for_key(request, key) if key else None


# An API key in either header, else the browser's session. Keys come first: ninja's
# session auth checks CSRF as soon as it is tried, which would refuse every key-only
# write from curl, promptfoo or an SDK.
api_auth = [BearerKeyAuth(), HeaderKeyAuth(), SessionAuth()]
