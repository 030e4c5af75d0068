"""`{% blob_media value %}`: the media a result or span refers to, as images, players or links.

The evals result drawer passes a result's response (or any JSON value); every blob URI
inside it is shown once, with one query for all of them. A page showing many values
(the trace page, one per span attribute) looks the blobs up once with `blobs_in` and
passes them as `{% blob_media value known %}`, so it renders them without queries.
"""

from __future__ import annotations

from typing import Any

from django import template

from blobs.models import Blob, BlobKind
from blobs.services import blob_url, referenced_shas
from blobs.serving import is_inline_type

register = template.Library()


@register.inclusion_tag("blobs/_media.html")
def blob_media(value: Any, known: dict[str, Blob] | None = None) -> dict[str, Any]:
    shas = referenced_shas(value)
    if not shas:
        return {"items": []}
    blobs = Blob.objects.in_bulk(shas) if known is None else known
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
