"""The blobs app's settings, read in one place with their defaults.

settings.py may set any of these; nothing else in the app reads `settings` for them.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, storages

DEFAULT_MIN_BYTES = 1024
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
# Unreferenced blobs and stray files younger than this are left alone by GC: an
# ingest may have written them and not yet committed the rows that use them.
DEFAULT_GC_MIN_AGE_SECONDS = 3600


def min_bytes() -> int:
    """Decoded payloads smaller than this stay inline in the result."""
    return int(getattr(settings, "BLOB_MIN_BYTES", DEFAULT_MIN_BYTES))


def max_bytes() -> int:
    """Decoded payloads larger than this are rejected (TooLarge), never stored."""
    return int(getattr(settings, "BLOB_MAX_BYTES", DEFAULT_MAX_BYTES))


def gc_min_age_seconds() -> int:
    return int(getattr(settings, "BLOB_GC_MIN_AGE_SECONDS", DEFAULT_GC_MIN_AGE_SECONDS))


def blob_storage() -> Storage:
    """`STORAGES["blobs"]` when configured (e.g. S3), else files under ALCHEMY_HOME/blobs."""
    if "blobs" in settings.STORAGES:
        return storages["blobs"]
    from blobs.storage import ContentAddressedFileSystemStorage

    return ContentAddressedFileSystemStorage(location=Path(settings.ALCHEMY_HOME) / "blobs")
