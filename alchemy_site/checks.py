"""System checks for configuration mistakes that would otherwise surface late."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_alchemy_home(app_configs, **kwargs):
    home = settings.ALCHEMY_HOME
    errors = []
    if not os.access(home, os.W_OK):
        errors.append(
            Error(
                f"ALCHEMY_HOME {home} is not writable.",
                hint="Point ALCHEMY_HOME at a directory this user owns.",
                id="alchemy.E001",
            )
        )
    elif home.stat().st_mode & 0o077:
        errors.append(
            Warning(
                f"ALCHEMY_HOME {home} is readable by other users.",
                hint=f"chmod 700 {home}",
                id="alchemy.W001",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def check_single_process_channel_layer(app_configs, **kwargs):
    if not settings.REDIS_URL and settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return [
            Warning(
                "PostgreSQL is configured but REDIS_URL is not: live updates reach only "
                "clients of the server process that wrote the results.",
                hint="Set REDIS_URL=redis://host:6379/0 when running several server processes.",
                id="alchemy.W002",
            )
        ]
    return []
