"""The blobs app's settings, read in one place with their defaults.

Their values come from settings.py (env-driven); nothing else in the app reads them.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, storages


def min_bytes() -> int:
    """Decoded payloads smaller than this stay inline in the result."""
    return settings.BLOB_MIN_BYTES


def max_bytes() -> int:
    """Decoded payloads larger than this are rejected (TooLarge), never stored."""
    return settings.BLOB_MAX_BYTES


def gc_min_age_seconds() -> int:
    """Unreferenced blobs and stray files younger than this are left alone by GC: an
    ingest may have written them and not yet committed the rows that use them."""
    return settings.BLOB_GC_MIN_AGE_SECONDS


def blob_storage() -> Storage:
    """`STORAGES["blobs"]` when configured (e.g. S3), else files under ALCHEMY_HOME/blobs."""
    if "blobs" in settings.STORAGES:
        return storages["blobs"]
    from blobs.storage import ContentAddressedFileSystemStorage

    return ContentAddressedFileSystemStorage(location=Path(settings.ALCHEMY_HOME) / "blobs")
