"""Settings helpers fail loudly on bad values; checks flag a bad ALCHEMY_HOME."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from alchemy_site import checks
from alchemy_site import settings as alchemy_settings
from tests.procs import run_django


def test_a_non_boolean_flag_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("ALCHEMY_DISABLE_WAL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="ALCHEMY_DISABLE_WAL"):
        alchemy_settings.env_bool("ALCHEMY_DISABLE_WAL")


def test_a_non_number_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("ALCHEMY_SQLITE_BUSY_TIMEOUT", "soon")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        alchemy_settings.env_int("ALCHEMY_SQLITE_BUSY_TIMEOUT", 30)


def test_a_busy_timeout_below_five_seconds_is_refused(monkeypatch):
    monkeypatch.setenv("ALCHEMY_SQLITE_BUSY_TIMEOUT", "1")
    with pytest.raises(ImproperlyConfigured, match="at least 5"):
        alchemy_settings.env_int("ALCHEMY_SQLITE_BUSY_TIMEOUT", 30, minimum=5)


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "nonsense", "redis://x:6379"])
def test_an_unsupported_database_url_is_a_configuration_error(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        alchemy_settings.database_from_url(url)


def test_a_postgres_url_selects_postgresql():
    config = alchemy_settings.database_from_url("postgres://u:p@db.example:5433/alchemy")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "alchemy")


def test_postgresql_connections_come_from_a_pool_not_persistent_per_thread_ones():
    config = alchemy_settings.database_from_url(
        "postgres://u:p@db.example:5433/alchemy?sslmode=require"
    )
    # Django refuses a pool with CONN_MAX_AGE set; the URL's own options are kept beside it.
    assert config["CONN_MAX_AGE"] == 0 and config["CONN_HEALTH_CHECKS"] is True
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10}


def test_the_pool_size_comes_from_alchemy_db_pool_size(tmp_path):
    out = run_django(
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS']['pool']['max_size'])",
        tmp_path / "home",
        DATABASE_URL="postgres://u@127.0.0.1:5432/alchemy",
        ALCHEMY_DB_POOL_SIZE="3",
    ).stdout
    assert out.strip().splitlines()[-1] == "3"
    with pytest.raises(AssertionError, match="ALCHEMY_DB_POOL_SIZE=0 must be at least 1"):
        run_django("pass", tmp_path / "home", ALCHEMY_DB_POOL_SIZE="0")


def test_sqlite_databases_write_with_begin_immediate():
    config = alchemy_settings.sqlite_database(Path("/tmp/x.db"))
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_the_server_refuses_to_start_with_a_bad_redis_url(tmp_path):
    with pytest.raises(AssertionError, match="REDIS_URL"):
        run_django("pass", tmp_path / "home", REDIS_URL="http://nope")


def test_redis_url_selects_the_redis_channel_layer(tmp_path):
    out = run_django(
        "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])",
        tmp_path / "home",
        REDIS_URL="redis://127.0.0.1:6379/0",
    ).stdout
    assert "RedisChannelLayer" in out


def test_a_missing_alchemy_home_is_reported_by_the_system_checks(settings, tmp_path):
    settings.ALCHEMY_HOME = tmp_path / "does-not-exist"
    errors = checks.check_alchemy_home(None)
    assert [e.id for e in errors] == ["alchemy.E001"]


def test_a_world_readable_alchemy_home_is_warned_about(settings, tmp_path):
    home = tmp_path / "open"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    settings.ALCHEMY_HOME = home
    assert [e.id for e in checks.check_alchemy_home(None)] == ["alchemy.W001"]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())
