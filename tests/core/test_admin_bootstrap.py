"""`ensure_admin`: the first run creates an admin and says how to log in."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", "--url", "http://127.0.0.1:8000/", stdout=out)
    return out.getvalue()


def test_the_first_run_creates_admin_and_prints_the_password_once(settings):
    out = ensure_admin()
    username, password = settings.ADMIN_PASSWORD_FILE.read_text().split()
    assert username == "admin"
    assert password in out
    assert "http://127.0.0.1:8000/accounts/login/" in out
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert stat.S_IMODE(settings.ADMIN_PASSWORD_FILE.stat().st_mode) == 0o600


def test_later_runs_create_nobody_and_print_no_password(settings):
    ensure_admin()
    _, password = settings.ADMIN_PASSWORD_FILE.read_text().split()
    out = ensure_admin()
    assert password not in out
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
