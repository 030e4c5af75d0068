"""The content hash shared by the registry and the eval store."""

from __future__ import annotations

import hashlib


def content_hash(text: str) -> str:
    """sha256 hex of the UTF-8 text exactly as stored (no trimming or normalising)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
