"""GET /api/blobs/{sha256}: a blob's bytes, cacheable forever, seekable for media."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from blobs import serving

router = Router(tags=["blobs"])


@router.get("/{sha256}", url_name="blob")
def get_blob(request: HttpRequest, sha256: str) -> HttpResponse:
    """The blob's bytes (Range, ETag and If-None-Match supported); 404 if unknown."""
    return serving.blob_response(request, sha256=sha256)
