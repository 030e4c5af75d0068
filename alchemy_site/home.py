"""The ALCHEMY_HOME directory: where the database, keys, blobs and backups live.

Kept free of Django imports so settings can use it before Django is configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the current user."""
    path.mkdir(parents=True, exist_ok=True)
    if (path.stat().st_mode & 0o777) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def ensure_private_file(path: Path) -> Path:
    """Create an empty file with mode 0600 unless it exists; tighten its mode if it does."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        if (path.stat().st_mode & 0o777) != FILE_MODE:
            path.chmod(FILE_MODE)
    else:
        os.close(fd)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, mode 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_or_create_secret(path: Path, nbytes: int = 50) -> str:
    """Return the secret stored in `path`, generating it on first use."""
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    value = secrets.token_urlsafe(nbytes)
    write_private_file(path, value + "\n")
    return value
