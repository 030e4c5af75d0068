"""`manage.py check --deploy` is clean with the production env README.md documents.

The env is read from the README's "Scaling out" block, so the documentation and the
settings cannot drift apart. API keys hashed, the secret key file 0600 and span
attributes redacted are tested in tests/core/test_auth.py, tests/core/test_sqlite.py
and tests/tracing/.
"""

from __future__ import annotations

import re
import secrets
import shlex

import pytest

from tests.procs import REPO, manage


def scaling_out_env() -> dict[str, str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)[1]
    env = {}
    for line in block.splitlines():
        if line.startswith("export "):
            for word in shlex.split(line.removeprefix("export "), comments=True):
                name, _, value = word.partition("=")
                env[name] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(50)  # the README writes "…"
    return env


def test_the_documented_production_env_passes_the_deploy_check(tmp_path):
    env = scaling_out_env()
    assert {"DATABASE_URL", "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "SECURE_HSTS_SECONDS"} <= set(
        env
    )
    # check --deploy without --database runs no database checks: db.internal is not reached.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", home=tmp_path, timeout=120, **env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_proxy_ssl_header_is_read_as_a_header_name(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from alchemy_site.settings import proxy_ssl_header

    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    assert proxy_ssl_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")
    with pytest.raises(ImproperlyConfigured, match="X-Forwarded-Proto"):
        proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
