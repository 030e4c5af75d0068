"""Filesystem storage for content-addressed blobs.

A blob's name is its hash, so a name that already exists holds the same bytes:
saving it again replaces the file atomically instead of inventing a new name.
Bytes go to a temp file in the target directory, are fsynced, then renamed, so a
crash leaves either the whole file or a `.tmp-*` leftover (which GC removes) —
never a truncated blob under its real name.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage

TEMP_PREFIX = ".tmp-"


class ContentAddressedFileSystemStorage(FileSystemStorage):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(**kwargs)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name

    def _save(self, name: str, content: File) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        os.makedirs(directory, mode=self.directory_permissions_mode or 0o700, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp_path, self.file_permissions_mode or 0o600)
            os.replace(temp_path, full_path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp_path)
            raise
        return name.replace("\\", "/")
