from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from alchemy_site.auth import create_api_key


@pytest.fixture(autouse=True)
def alchemy_home(tmp_path: Path, settings) -> Path:
    """Point everything that writes under ALCHEMY_HOME at this test's tmp dir."""
    home = tmp_path / "alchemy-home"
    home.mkdir(mode=0o700)
    settings.ALCHEMY_HOME = home
    settings.SIGNAL_FILE = home / "evalLastWritten"
    settings.BACKUP_DIR = home / "backups"
    settings.ADMIN_PASSWORD_FILE = home / "admin-password.txt"
    return home


@pytest.fixture(autouse=True)
def fast_password_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="correct-horse-battery")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_superuser("root", password="correct-horse-battery")


@pytest.fixture
def api_key(user) -> str:
    _, raw = create_api_key(user=user, name="tests")
    return raw


@pytest.fixture
def api_client(api_key) -> Client:
    """A client that authenticates every request with a bearer API key."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")


@pytest.fixture
def logged_in_client(client: Client, user) -> Client:
    client.force_login(user)
    return client
