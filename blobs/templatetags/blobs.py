"""`{% blob_media value %}`: the media a result refers to, as images, players or links.

The evals result drawer passes a result's response (or any JSON value); every blob URI
inside it is shown once, with one query for all of them.
"""

from __future__ import annotations

from typing import Any

from django import template

from blobs.models import Blob, BlobKind
from blobs.services import BLOB_URI_RE, blob_url, iter_blob_strings
from blobs.serving import is_inline_type

register = template.Library()


@register.inclusion_tag("blobs/_media.html")
def blob_media(value: Any) -> dict[str, Any]:
    shas = list(
        dict.fromkeys(
            sha.lower() for text in iter_blob_strings(value) for sha in BLOB_URI_RE.findall(text)
        )
    )
    blobs = Blob.objects.in_bulk(shas) if shas else {}
    items = []
    for sha in shas:
        blob = blobs.get(sha)
        if blob is None:
            items.append({"sha256": sha, "missing": True})
            continue
        kind = blob.mime_type.split("/", 1)[0]
        items.append(
            {
                "sha256": sha,
                "url": blob_url(sha),
                "mime_type": blob.mime_type,
                "size": blob.size,
                # Only types served inline render in place; the rest is a download link.
                "as": kind if is_inline_type(blob.mime_type) else BlobKind.OTHER.value,
            }
        )
    return {"items": items}
