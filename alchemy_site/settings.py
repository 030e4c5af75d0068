"""Alchemy's one settings module.

Everything that differs between a laptop and a team deployment is read from the
environment here, and only here. Bad values fail loudly at start-up with
ImproperlyConfigured instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from alchemy_site.home import ensure_private_dir, read_or_create_secret

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Where data lives --------------------------------------------------------

ALCHEMY_HOME = ensure_private_dir(
    Path(env_str("ALCHEMY_HOME") or "~/.alchemy").expanduser().resolve()
)
SIGNAL_FILE = ALCHEMY_HOME / "evalLastWritten"
BACKUP_DIR = ALCHEMY_HOME / "backups"
BACKUPS_KEPT = env_int("ALCHEMY_BACKUPS_KEPT", 5, minimum=1)
ADMIN_PASSWORD_FILE = ALCHEMY_HOME / "admin-password.txt"

# --- Core --------------------------------------------------------------------

SECRET_KEY = env_str("SECRET_KEY") or read_or_create_secret(ALCHEMY_HOME / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Listed first so its `migrate` (which backs up SQLite before migrating) wins.
    "alchemy_site",
    # Not "daphne": as an app it only swaps in its runserver, and importing it (twisted)
    # cost every command 0.3 s and 26 MB. The server is the daphne command (make run).
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "ninja",
    "channels",
    "prompts",
    "evals",
    "blobs",
    "tracing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "alchemy_site.middleware.RejectNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "alchemy_site.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "alchemy_site.urls"
ASGI_APPLICATION = "alchemy_site.asgi.application"
WSGI_APPLICATION = "alchemy_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------

SQLITE_PATH = ALCHEMY_HOME / "alchemy.db"
DISABLE_WAL = env_bool("ALCHEMY_DISABLE_WAL", False)
# Seconds a writer waits for SQLite's write lock before giving up.
SQLITE_BUSY_TIMEOUT = env_int("ALCHEMY_SQLITE_BUSY_TIMEOUT", 30, minimum=5)


# PostgreSQL connections each process keeps (its pool's most); workers × this must stay
# under the server's max_connections.
DB_POOL_SIZE = env_int("ALCHEMY_DB_POOL_SIZE", 10, minimum=1)
POOL_TIMEOUT = 10


def database_from_url(url: str) -> dict:
    scheme = urlparse(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported; "
            "use postgres://user:password@host:5432/name or sqlite:////absolute/path.db"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL could not be parsed: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        return sqlite_database(Path(config["NAME"]))
    if not config.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database; add /<name> to the URL.")
    # psycopg's pool, not persistent connections (CONN_MAX_AGE): the ASGI server runs each
    # request on a thread of its own, so a connection kept per thread was a new connection
    # every request, held open until the garbage collector freed its dead thread's (under
    # load PostgreSQL ran out of connections). A request takes one of these and gives it
    # back; one that waits POOL_TIMEOUT seconds for it answers 503.
    pool = {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": POOL_TIMEOUT}
    config["OPTIONS"] = {**config.get("OPTIONS", {}), "pool": pool}
    return config


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # Writers take the lock at BEGIN and queue on busy_timeout, instead of
            # failing with "database is locked" when a read transaction upgrades.
            "transaction_mode": "IMMEDIATE",
            "timeout": SQLITE_BUSY_TIMEOUT,
        },
        # A file (not :memory:) so tests see WAL, several processes and live servers.
        "TEST": {"NAME": path.with_name(f"test_{path.name}")},
    }


DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {
    "default": database_from_url(DATABASE_URL) if DATABASE_URL else sqlite_database(SQLITE_PATH)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels (live updates) -------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    if urlparse(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL {REDIS_URL!r} is not a redis:// or rediss:// URL.")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py times reads out after 5 s by default, and channels-redis waits
            # 5 s per receive: an idle consumer would fail on every loop without this.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth --------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Paths that authenticate on their own (API keys) or must be reachable anonymously.
LOGIN_EXEMPT_PREFIXES = ("/api/", "/v1/", "/static/", "/healthz", "/accounts/login/")
LOGIN_MAX_FAILURES = env_int("ALCHEMY_LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("ALCHEMY_LOGIN_LOCKOUT_SECONDS", 300, minimum=1)
API_KEY_TOUCH_INTERVAL = env_int("ALCHEMY_API_KEY_TOUCH_SECONDS", 60, minimum=0)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Load balancers probe /healthz over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)


def proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto` → Django's ("HTTP_X_FORWARDED_PROTO", "https"): behind a TLS
    proxy that sets it, requests count as secure (no redirect loop with SSL_REDIRECT).
    Set it only if the proxy overwrites the header: a client could send it too."""
    header = env_str(name)
    if not header:
        return None
    if not header.replace("-", "").isalnum():
        raise ImproperlyConfigured(
            f"{name}={header!r} is not a header name; use X-Forwarded-Proto."
        )
    return ("HTTP_" + header.upper().replace("-", "_"), "https")


SECURE_PROXY_SSL_HEADER = proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- I18n, static ------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the apps' static folders so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Blobs (images and audio moved out of results) --------------------------------

BLOB_MIN_BYTES = env_int("ALCHEMY_BLOB_MIN_BYTES", 1024, minimum=1)
BLOB_MAX_BYTES = env_int("ALCHEMY_BLOB_MAX_BYTES", 100 * 1024 * 1024, minimum=1024)
# GC leaves younger unreferenced blobs alone: an ingest may not have committed yet.
BLOB_GC_MIN_AGE_SECONDS = env_int("ALCHEMY_BLOB_GC_MIN_AGE_SECONDS", 3600, minimum=0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Without a bucket, blobs are files under ALCHEMY_HOME/blobs/aa/bb/<sha256>.
BLOBS_S3_BUCKET = env_str("ALCHEMY_BLOBS_S3_BUCKET")
if BLOBS_S3_BUCKET:
    STORAGES["blobs"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BLOBS_S3_BUCKET,
            "endpoint_url": env_str("ALCHEMY_BLOBS_S3_ENDPOINT_URL") or None,
            # Content-addressed keys never hold different bytes, so overwriting is safe.
            "file_overwrite": True,
            "default_acl": "private",
            "querystring_auth": True,
        },
    }

# --- Tracing (OTLP/HTTP receiver) ----------------------------------------------------

OTLP_MAX_BODY_BYTES = env_int("ALCHEMY_OTLP_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1024)
# Spans waiting to be written, process-wide; past this the receiver answers 429.
OTLP_QUEUE_MAX_SPANS = env_int("ALCHEMY_OTLP_QUEUE_MAX_SPANS", 50_000, minimum=1)
OTLP_BODY_MAX_CHARS = env_int("ALCHEMY_OTLP_BODY_MAX_CHARS", 4096, minimum=64)
OTLP_ATTRIBUTE_MAX_CHARS = env_int("ALCHEMY_OTLP_ATTRIBUTE_MAX_CHARS", 400, minimum=16)

# --- Limits --------------------------------------------------------------------

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ALCHEMY_MAX_REQUEST_BYTES", 200 * 1024 * 1024, minimum=1024)
RESULTS_BATCH_LIMIT = env_int("ALCHEMY_RESULTS_BATCH_LIMIT", 10_000, minimum=1)
# An import reads and prepares its file in a forked second process while this one writes
# (Linux); 0 keeps it to one process.
IMPORT_READER_PROCESS = env_bool("ALCHEMY_IMPORT_READER_PROCESS", True)
EVAL_IDLE_INTERRUPTED_SECONDS = env_int("ALCHEMY_EVAL_IDLE_SECONDS", 600, minimum=1)

NINJA_PAGINATION_MAX_LIMIT = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
