"""Turning a blob into an HTTP response: validation, caching, ranges, safe types."""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import IO

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

from alchemy_site.errors import NotFound
from blobs import conf
from blobs.models import Blob
from blobs.services import is_valid_sha256

logger = logging.getLogger(__name__)

# Types a browser may render in place. Anything else (SVG, HTML, PDF, XML, JS, text)
# is a download, so media stored from a model's output can never run script here.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})
INLINE_PREFIXES = ("audio/", "video/")
CACHE_CONTROL = "private, max-age=31536000, immutable"
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
CHUNK_SIZE = 64 * 1024


def is_inline_type(mime: str) -> bool:
    return mime in INLINE_TYPES or (mime.startswith(INLINE_PREFIXES) and "+xml" not in mime)


def blob_response(request: HttpRequest, *, sha256: str) -> HttpResponse:
    if not is_valid_sha256(sha256):
        raise NotFound("No blob with that hash.")
    blob = Blob.objects.filter(pk=sha256).first()
    if blob is None:
        raise NotFound("No blob with that hash.")

    etag = f'"{blob.sha256}"'
    if _etag_matches(request.headers.get("If-None-Match", ""), etag):
        response = HttpResponse(status=HTTPStatus.NOT_MODIFIED)
        _common_headers(response, blob, etag)
        return response

    byte_range = None
    if_range = request.headers.get("If-Range")
    if if_range is None or if_range.strip() == etag:
        byte_range = parse_range(request.headers.get("Range", ""), size=blob.size)
    if byte_range == "unsatisfiable":
        response = HttpResponse(status=HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
        response["Content-Range"] = f"bytes */{blob.size}"
        _common_headers(response, blob, etag)
        return response

    try:
        handle = conf.blob_storage().open(blob.storage_key, "rb")
    except FileNotFoundError:
        logger.error("Blob %s has a row but its file %s is missing", blob.sha256, blob.storage_key)
        raise NotFound("That blob's file is missing from storage.") from None

    if byte_range is None:
        response = FileResponse(handle, content_type=blob.mime_type)
        response["Content-Length"] = str(blob.size)
    else:
        start, end = byte_range
        response = StreamingHttpResponse(
            _read_range(handle, start, end - start + 1),
            status=HTTPStatus.PARTIAL_CONTENT,
            content_type=blob.mime_type,
        )
        response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        response["Content-Length"] = str(end - start + 1)
    _common_headers(response, blob, etag)
    return response


def parse_range(header: str, *, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range as inclusive (start, end), "unsatisfiable", or None (send all).

    Malformed headers, other units and multi-range requests are ignored, as RFC 9110
    allows: the client gets the whole blob with 200.
    """
    match = RANGE_RE.fullmatch(header.replace(" ", ""))
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:  # bytes=-N: the last N bytes
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    start = int(match[1])
    if match[2] and int(match[2]) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(match[2]), size - 1) if match[2] else size - 1


def _read_range(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK_SIZE, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def _common_headers(response: HttpResponse, blob: Blob, etag: str) -> None:
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    if not is_inline_type(blob.mime_type):
        extension = mimetypes.guess_extension(blob.mime_type) or ".bin"
        response["Content-Disposition"] = f'attachment; filename="{blob.sha256}{extension}"'
        response["Content-Security-Policy"] = "sandbox"
