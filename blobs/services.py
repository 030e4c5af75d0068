"""The blobs write path: media out of results and spans into content-addressed storage.

`externalize_results` runs on every result batch the evals write path stores, and
`externalize_span_media` on every OTLP export, so their no-media path is a walk over
string values with a length and substring test each; regexes and base64 run only on
strings that already look like media. Both find media with the same `_find_sites`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import errno
import hashlib
import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Sum
from django.urls import reverse
from django.utils import timezone

from alchemy_site import fastjson
from alchemy_site.errors import StorageFull, TooLarge
from blobs import conf
from blobs.models import Blob, BlobKind, BlobReference
from blobs.storage import TEMP_PREFIX

logger = logging.getLogger(__name__)

BLOB_URI_PREFIX = "promptfoo://blob/"
SHA256_RE = re.compile(r"[0-9a-f]{64}")
BLOB_URI_RE = re.compile(r"promptfoo://blob/([0-9a-fA-F]{64})(?![0-9a-fA-F])")
DATA_URL_RE = re.compile(
    r"data:(?P<mime>[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(?:;[A-Za-z0-9.+-]+=[A-Za-z0-9.+\"-]+)*"
    r";base64,(?P<data>[A-Za-z0-9+/]*={0,2})"
)
BARE_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# Characters that may follow a data URL embedded in longer text (markdown, HTML, JSON).
# Anything else right after the base64 means it was not valid base64: leave it alone.
DATA_URL_END = frozenset(")\"'<>]}, \t\r\n")
# promptfoo stores results with these keys; prompts and test vars are the user's input.
SCANNED_FIELDS = ("response", "output", "metadata", "gradingResult")
AUDIO_MIME_BY_FORMAT = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
    "opus": "audio/opus",
    "pcm16": "audio/L16",
}
SAFE_FORMAT_RE = re.compile(r"[a-z0-9_+-]+")
# What a span stores (tracing builds these dicts); resource attributes describe the
# producer, are shared by every span of an export, and are not scanned.
SPAN_FIELDS = ("attributes", "events", "links")
# Span attributes follow no one shape, so bare base64 (no data: URL) counts as media
# when its JSON path names an image or audio; its leading bytes then give its type.
MEDIA_PATH_WORDS = ("image", "audio")
MAGIC_MIME = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
)
RIFF_MIME = {b"WEBP": "image/webp", b"WAVE": "audio/wav"}
UNKNOWN_MIME = "application/octet-stream"
GC_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PendingReference:
    """A use of a blob found in a result, saved with the batch by `save_references`."""

    blob_sha256: str
    eval_id: str
    test_idx: int
    prompt_idx: int
    location: str
    kind: str


@dataclass(frozen=True, slots=True)
class MediaUse:
    """A blob that the span at `item` of `externalize_span_media`'s list now refers to."""

    item: int
    blob_sha256: str
    location: str
    kind: str


@dataclass(slots=True)
class _Payload:
    start: int
    end: int
    mime: str
    data: str  # base64 text, padding fixed
    size: int
    sha256: str = ""


@dataclass(slots=True)
class _Site:
    """A string inside a result that holds media (or already a blob reference)."""

    result_pos: int
    container: dict | list
    key: str | int
    location: str
    bare_audio: bool = False
    payloads: list[_Payload] = field(default_factory=list)


# --- Helpers -----------------------------------------------------------------


def storage_key(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def blob_uri(sha256: str) -> str:
    return f"{BLOB_URI_PREFIX}{sha256}"


def blob_url(sha256: str) -> str:
    """Where the dashboard (or any API client) fetches a blob's bytes."""
    return reverse("api:blob", kwargs={"sha256": sha256})


def is_valid_sha256(value: str) -> bool:
    return bool(SHA256_RE.fullmatch(value))


def kind_for_mime(mime: str) -> str:
    if mime.startswith("image/"):
        return BlobKind.IMAGE
    if mime.startswith("audio/"):
        return BlobKind.AUDIO
    return BlobKind.OTHER


def audio_mime(audio_format: Any) -> str:
    """promptfoo's audio `format` ("wav", "mp3", "audio/ogg") as a MIME type."""
    if not isinstance(audio_format, str) or not audio_format.strip():
        return "audio/wav"
    value = audio_format.strip().lower()
    if value.startswith("audio/") and SAFE_FORMAT_RE.fullmatch(value.removeprefix("audio/")):
        return value
    if value in AUDIO_MIME_BY_FORMAT:
        return AUDIO_MIME_BY_FORMAT[value]
    # No dots or slashes: "wav.html" must not become a type a browser renders.
    return f"audio/{value}" if SAFE_FORMAT_RE.fullmatch(value) else "audio/wav"


def _padded(data: str) -> str | None:
    """Base64 text with its padding completed, or None if no padding can make it valid."""
    remainder = len(data) % 4
    if remainder == 1:
        return None
    return data + "=" * ((4 - remainder) % 4) if remainder else data


def _decoded_size(data: str) -> int:
    return len(data) // 4 * 3 - data[-2:].count("=") if data else 0


def _min_base64_chars(min_bytes: int) -> int:
    return max(4 * (min_bytes // 3), 4)


def _sniffed_mime(data: str) -> str:
    """The type of base64 `data` told by its first bytes, or application/octet-stream."""
    head = base64.b64decode(data[:16])  # 12 bytes: enough for RIFF's subtype at 8..12
    for magic, mime in MAGIC_MIME:
        if head.startswith(magic):
            return mime
    if head.startswith(b"RIFF"):
        return RIFF_MIME.get(head[8:12], UNKNOWN_MIME)
    return UNKNOWN_MIME


# --- Externalization (write path) ------------------------------------------------


def externalize_results(*, eval_id: str, results: list[dict]) -> list[PendingReference]:
    """Move media in `results` into blob storage, replacing it in place by blob URIs.

    Every `data:<mime>;base64,…` (whole string or embedded in text) and promptfoo's
    bare base64 `audio.data` whose decoded size is within [BLOB_MIN_BYTES,
    BLOB_MAX_BYTES] is stored once and replaced by `promptfoo://blob/<sha256>`.
    Existing blob URIs (imports) are recorded too when the blob is known.

    All sizes are checked before anything is written: an oversized payload raises
    TooLarge and leaves the batch and storage untouched. Files are written before
    their Blob rows, so a crash leaves at most an orphan file for GC, never a row
    without bytes. Call this before opening the batch transaction (file I/O should
    not hold SQLite's write lock), then `save_references` inside it.
    """
    min_bytes, max_bytes = conf.min_bytes(), conf.max_bytes()
    media_sites, ref_sites = _find_sites(
        results, fields=SCANNED_FIELDS, min_chars=_min_base64_chars(min_bytes)
    )
    if not media_sites and not ref_sites:
        return []
    _reject_oversized(media_sites, results, max_bytes=max_bytes)

    pending: dict[tuple, PendingReference] = {}
    for site, sha256, mime in _store_and_replace(media_sites, ref_sites, min_bytes=min_bytes):
        _add_pending(pending, results, site, sha256, mime, eval_id)
    return list(pending.values())


def externalize_span_media(*, spans: list[dict]) -> list[MediaUse]:
    """Move media in spans into blob storage, replacing it in place by blob URIs.

    `spans` are dicts of a span's SPAN_FIELDS, already redacted (a secret is never
    stored as a blob) and not yet truncated (a blob URI survives truncation; the
    media would not). Media is recognised as in `externalize_results`, and bare base64
    whose JSON path names an image or audio counts too. A payload over BLOB_MAX_BYTES
    is left in place for truncation: one oversized attribute must not cost a provider
    its whole export. Call this before the transaction that stores the spans, then
    `save_span_references` inside it.
    """
    min_bytes, max_bytes = conf.min_bytes(), conf.max_bytes()
    media_sites, ref_sites = _find_sites(
        spans, fields=SPAN_FIELDS, min_chars=_min_base64_chars(min_bytes), bare_media=True
    )
    if not media_sites and not ref_sites:
        return []
    for site in media_sites:
        fitting = [payload for payload in site.payloads if payload.size <= max_bytes]
        if len(fitting) < len(site.payloads):
            logger.warning("Span media over %d bytes at %s is not stored", max_bytes, site.location)
        site.payloads = fitting

    uses: dict[tuple, MediaUse] = {}
    for site, sha256, mime in _store_and_replace(media_sites, ref_sites, min_bytes=min_bytes):
        use = MediaUse(site.result_pos, sha256, site.location[:1024], _kind(site, mime))
        uses[(use.item, use.blob_sha256, use.location)] = use
    return list(uses.values())


def _store_and_replace(
    media_sites: list[_Site], ref_sites: list[tuple[_Site, list[str]]], *, min_bytes: int
) -> list[tuple[_Site, str, str]]:
    """Store each payload and put its blob URI in its place: (site, sha256, mime) per use.

    Blob URIs that were already there (imports) are uses too when their blob is known.
    """
    uses: list[tuple[_Site, str, str]] = []
    stored = _store_payloads(media_sites, min_bytes=min_bytes)
    for site in media_sites:
        value = site.container[site.key]
        kept = [p for p in site.payloads if p.sha256]
        for payload in reversed(kept):
            value = value[: payload.start] + blob_uri(payload.sha256) + value[payload.end :]
        if kept:
            site.container[site.key] = value
        uses.extend((site, payload.sha256, stored[payload.sha256]) for payload in kept)

    if ref_sites:
        wanted = {sha for site, shas in ref_sites for sha in shas}
        known = dict(Blob.objects.filter(pk__in=wanted).values_list("sha256", "mime_type"))
        for site, shas in ref_sites:
            for sha in shas:
                if sha in known:
                    uses.append((site, sha, known[sha]))
                else:
                    logger.warning("Value refers to unknown blob %s at %s", sha, site.location)
    return uses


def _kind(site: _Site, mime: str) -> str:
    return BlobKind.AUDIO if site.bare_audio else kind_for_mime(mime)


def _add_pending(
    pending: dict[tuple, PendingReference],
    results: list[dict],
    site: _Site,
    sha256: str,
    mime: str,
    eval_id: str,
) -> None:
    result = results[site.result_pos]
    test_idx = int(result.get("testIdx", result.get("test_idx", 0)) or 0)
    prompt_idx = int(result.get("promptIdx", result.get("prompt_idx", 0)) or 0)
    location = site.location[:1024]
    pending[(sha256, test_idx, prompt_idx, location)] = PendingReference(
        blob_sha256=sha256,
        eval_id=eval_id,
        test_idx=test_idx,
        prompt_idx=prompt_idx,
        location=location,
        kind=_kind(site, mime),
    )


def _find_sites(
    results: list[dict], *, fields: Sequence[str], min_chars: int, bare_media: bool = False
) -> tuple[list[_Site], list[tuple[_Site, list[str]]]]:
    """Strings under `fields` of each result that hold media, and those with blob URIs.

    `bare_media` also takes bare base64 under a path naming image or audio (spans).
    """
    media: list[_Site] = []
    refs: list[tuple[_Site, list[str]]] = []
    for pos, result in enumerate(results):
        if not _may_hold_media(result, fields, min_chars=min_chars if bare_media else None):
            continue
        for name in fields:
            value = result.get(name)
            if value is None:
                continue
            for container, key, location, text in _strings(result, name, value):
                if len(text) >= min_chars:
                    site = _media_site(pos, container, key, location, text, bare_media=bare_media)
                    if site is not None:
                        media.append(site)
                        continue
                if BLOB_URI_PREFIX in text:
                    shas = [m.lower() for m in BLOB_URI_RE.findall(text)]
                    if shas:
                        refs.append((_Site(pos, container, key, location), shas))
    return media, refs


# Every media site or blob reference `_find_sites` can report contains one of these: a data
# URL, a blob URI, or a bare-base64 `audio.data` key. `"data"` counts only as a key (a colon
# follows it): as a string value it is common (a var's value, a word of output), and each
# result holding it was walked in vain (3% of the bench's results, 0.16 s of a 100k import).
MEDIA_MARKERS = ("base64,", BLOB_URI_PREFIX, '"data"')
_DATA_KEY = '"data"'
_COLON = re.compile(r"\s*:")


def _marks(text: str, marker: str, at: int) -> bool:
    """Whether `marker`, found at `at` in `text`, is one (`"data"` must be a key)."""
    return marker != _DATA_KEY or _COLON.match(text, at + len(marker)) is not None


def holds_media_marker(text: str) -> bool:
    """False when `text` (a string, or a value's JSON text) can hold no media or blob URI.

    The evals write path asks this (through `texts_with_media_marker`) of the JSON it
    encodes for the INSERT anyway, so a batch without media (nearly all) is never
    encoded or walked a second time.
    """
    for marker in MEDIA_MARKERS:
        at = text.find(marker)
        while at != -1:
            if _marks(text, marker, at):
                return True
            at = text.find(marker, at + 1)
    return False


def texts_with_media_marker(texts: Sequence[str | None]) -> set[int]:
    """The positions in `texts` (None: no text) of those `holds_media_marker` accepts.

    One search per marker over the texts joined by a newline (no marker holds one, so
    none can be made of one text's end and the next one's start): a batch of results
    costs a few C-speed passes, not a call per text. Nearly always none holds a marker,
    which one search of them all says before any position is worked out.
    """
    if not holds_media_marker("\n".join(filter(None, texts))):
        return set()
    texts = [text or "" for text in texts]
    joined = "\n".join(texts)
    starts = list(itertools.accumulate((len(text) + 1 for text in texts), initial=0))
    found: set[int] = set()
    for marker in MEDIA_MARKERS:
        at = joined.find(marker)
        while at != -1:
            if not _marks(joined, marker, at):
                at = joined.find(marker, at + 1)
                continue
            position = bisect.bisect_right(starts, at) - 1
            found.add(position)
            at = joined.find(marker, starts[position + 1])
    return found


def _may_hold_media(result: dict, fields: Sequence[str], *, min_chars: int | None) -> bool:
    """False when no scanned field can hold media: one C-speed dump instead of a walk.

    Nearly all results hold no media; walking every string of every result (building a
    JSON path per node) cost add_results about a fifth of its time (tests.bench profile).
    With `min_chars` (bare media wanted), a field long enough that names image or audio
    may hold media too: bare base64 has no marker.
    """
    for name in fields:
        value = result.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else fastjson.dumps(value)
        if holds_media_marker(text):
            return True
        if min_chars is not None and len(text) >= min_chars and _names_media(text):
            return True
    return False


def _strings(container: dict | list, key: str | int, value: Any, location: str | None = None):
    """Yield (container, key, json path, text) for every string under container[key]."""
    location = key if location is None else location
    if isinstance(value, str):
        yield container, key, location, value
    elif isinstance(value, dict):
        for child_key, child in value.items():
            if isinstance(child, str | dict | list):
                yield from _strings(value, child_key, child, f"{location}.{child_key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            if isinstance(child, str | dict | list):
                yield from _strings(value, index, child, f"{location}[{index}]")


def _media_site(
    pos: int, container: Any, key: Any, location: str, text: str, *, bare_media: bool = False
) -> _Site | None:
    if "base64," in text:
        payloads = []
        for match in DATA_URL_RE.finditer(text):
            end = match.end()
            if end < len(text) and text[end] not in DATA_URL_END:
                continue
            data = _padded(match["data"])
            if data is None:
                continue
            payloads.append(
                _Payload(match.start(), end, match["mime"].lower(), data, _decoded_size(data))
            )
        return _Site(pos, container, key, location, payloads=payloads) if payloads else None
    if key == "data" and isinstance(container, dict) and location.endswith("audio.data"):
        if text.startswith(BLOB_URI_PREFIX) or not BARE_BASE64_RE.fullmatch(text):
            return None
        data = _padded(text)
        if data is None:
            return None
        mime = audio_mime(container.get("format"))
        payload = _Payload(0, len(text), mime, data, _decoded_size(data))
        return _Site(pos, container, key, location, bare_audio=True, payloads=[payload])
    if bare_media and _names_media(location) and BARE_BASE64_RE.fullmatch(text):
        data = _padded(text)
        if data is None:
            return None
        payload = _Payload(0, len(text), _sniffed_mime(data), data, _decoded_size(data))
        return _Site(pos, container, key, location, payloads=[payload])
    return None


def _names_media(text: str) -> bool:
    # str.lower and `in` run at C speed; a case-insensitive regex cost ingestion a sixth.
    lowered = text.lower()
    return any(word in lowered for word in MEDIA_PATH_WORDS)


def _reject_oversized(sites: list[_Site], results: list[dict], *, max_bytes: int) -> None:
    for site in sites:
        for payload in site.payloads:
            if payload.size > max_bytes:
                result = results[site.result_pos]
                raise TooLarge(
                    f"Result {site.result_pos} has {payload.size} bytes of {payload.mime} at "
                    f"{site.location}; the limit is {max_bytes} bytes (BLOB_MAX_BYTES). "
                    "Nothing from this batch was stored.",
                    index=site.result_pos,
                    test_idx=result.get("testIdx"),
                    prompt_idx=result.get("promptIdx"),
                    location=site.location,
                    size=payload.size,
                    limit=max_bytes,
                )


def _store_payloads(sites: list[_Site], *, min_bytes: int) -> dict[str, str]:
    """Decode, hash and store each payload once; returns {sha256: mime} of what was stored.

    Payloads that are not valid base64 or decode to fewer than min_bytes keep an empty
    sha256 and stay inline.
    """
    storage = conf.blob_storage()
    stored: dict[str, str] = {}
    rows: list[Blob] = []
    for site in sites:
        for payload in site.payloads:
            try:
                content = base64.b64decode(payload.data, validate=True)
            except (binascii.Error, ValueError):
                continue
            if len(content) < min_bytes:
                continue
            sha = hashlib.sha256(content).hexdigest()
            payload.sha256 = sha
            if sha in stored:
                continue
            key = _write_file(storage, sha, content)
            stored[sha] = payload.mime
            rows.append(
                Blob(sha256=sha, size=len(content), mime_type=payload.mime, storage_key=key)
            )
    # Rows after files: an existing row (same bytes) is kept as it is.
    Blob.objects.bulk_create(rows, ignore_conflicts=True, batch_size=GC_CHUNK)
    return stored


def _write_file(storage: Storage, sha256: str, content: bytes) -> str:
    key = storage_key(sha256)
    if storage.exists(key):
        return key
    try:
        return storage.save(key, ContentFile(content))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull(
                "Blob storage is out of space; nothing from this batch was stored. "
                "Free disk space (or run `manage.py blobs gc`) and retry."
            ) from exc
        raise


def save_references(refs: list[PendingReference]) -> None:
    """Record blob uses; call inside the transaction that stores their results."""
    if not refs:
        return
    BlobReference.objects.bulk_create(
        [
            BlobReference(
                blob_id=ref.blob_sha256,
                eval_id=ref.eval_id,
                test_idx=ref.test_idx,
                prompt_idx=ref.prompt_idx,
                location=ref.location,
                kind=ref.kind,
            )
            for ref in refs
        ],
        ignore_conflicts=True,
        batch_size=GC_CHUNK,
    )


def save_span_references(uses: Iterable[tuple[int, MediaUse]]) -> None:
    """Record (span pk, use) pairs; call inside the transaction that stores the spans."""
    BlobReference.objects.bulk_create(
        [
            BlobReference(
                blob_id=use.blob_sha256, span_id=span_pk, location=use.location, kind=use.kind
            )
            for span_pk, use in uses
        ],
        ignore_conflicts=True,
        batch_size=GC_CHUNK,
    )


def delete_references_for_eval(eval_id: str) -> None:
    """Forget an eval's blob uses (call in the eval's delete transaction); GC frees bytes."""
    BlobReference.objects.filter(eval_id=eval_id).delete()


# --- Inlining (exports with --include-media) -------------------------------------


def inline_blobs(value: Any) -> Any:
    """A copy of `value` with each blob URI replaced by its data again.

    `…audio.data` gets bare base64 (promptfoo's shape); everything else a data URL.
    URIs of blobs that are unknown or whose file is gone are left as they are.
    """
    shas = {sha.lower() for text in iter_blob_strings(value) for sha in BLOB_URI_RE.findall(text)}
    if not shas:
        return value
    storage = conf.blob_storage()
    encoded: dict[str, tuple[str, str]] = {}
    for blob in Blob.objects.filter(pk__in=shas):
        try:
            with storage.open(blob.storage_key, "rb") as handle:
                encoded[blob.sha256] = (blob.mime_type, base64.b64encode(handle.read()).decode())
        except FileNotFoundError:
            logger.warning("Blob %s has a row but no file; left as a reference", blob.sha256)
    return _inline(value, encoded, audio_data=False)


def referenced_shas(value: Any) -> list[str]:
    """The hashes of the blob URIs inside a JSON value, each once, in order."""
    return list(
        dict.fromkeys(
            sha.lower() for text in iter_blob_strings(value) for sha in BLOB_URI_RE.findall(text)
        )
    )


def blobs_in(value: Any) -> dict[str, Blob]:
    """The Blob rows a JSON value refers to, by hash, in one query (none without URIs)."""
    shas = referenced_shas(value)
    return Blob.objects.in_bulk(shas) if shas else {}


def iter_blob_strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value that holds a blob URI."""
    if isinstance(value, str):
        if BLOB_URI_PREFIX in value:
            yield value
    elif isinstance(value, dict):
        for child in value.values():
            yield from iter_blob_strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from iter_blob_strings(child)


def _inline(value: Any, encoded: dict[str, tuple[str, str]], *, audio_data: bool) -> Any:
    if isinstance(value, str):
        if BLOB_URI_PREFIX not in value:
            return value

        def replace(match: re.Match) -> str:
            found = encoded.get(match[1].lower())
            if found is None:
                return match[0]
            mime, data = found
            return data if audio_data and match[0] == value else f"data:{mime};base64,{data}"

        return BLOB_URI_RE.sub(replace, value)
    if isinstance(value, dict):
        is_audio = "format" in value or "transcript" in value
        return {
            key: _inline(child, encoded, audio_data=is_audio and key == "data")
            for key, child in value.items()
        }
    if isinstance(value, list):
        return [_inline(child, encoded, audio_data=False) for child in value]
    return value


# --- Garbage collection and stats --------------------------------------------------


@dataclass
class GcReport:
    dry_run: bool
    blobs_deleted: int = 0
    blob_bytes_freed: int = 0
    orphan_files_deleted: int = 0
    orphan_bytes_freed: int = 0
    temp_files_deleted: int = 0
    skipped_recent: int = 0

    @property
    def bytes_freed(self) -> int:
        return self.blob_bytes_freed + self.orphan_bytes_freed


def unreferenced_blobs():
    return Blob.objects.filter(~Exists(BlobReference.objects.filter(blob=OuterRef("pk"))))


def collect_garbage(*, dry_run: bool = False, min_age_seconds: int | None = None) -> GcReport:
    """Delete blobs nothing refers to, then files that have no Blob row.

    Anything younger than min_age_seconds (BLOB_GC_MIN_AGE_SECONDS, 1 h) is kept:
    an ingest writes the file, then the row, then (later, in the batch transaction)
    the references, and GC must not pull bytes from under it.
    """
    min_age = conf.gc_min_age_seconds() if min_age_seconds is None else min_age_seconds
    cutoff = timezone.now() - timedelta(seconds=min_age)
    storage = conf.blob_storage()
    report = GcReport(dry_run=dry_run)

    candidates = unreferenced_blobs()
    report.skipped_recent = candidates.filter(created_at__gt=cutoff).count()
    shas = list(candidates.filter(created_at__lte=cutoff).values_list("sha256", flat=True))
    for start in range(0, len(shas), GC_CHUNK):
        chunk = shas[start : start + GC_CHUNK]
        if dry_run:
            found = list(
                Blob.objects.filter(pk__in=chunk).values_list("sha256", "storage_key", "size")
            )
        else:
            found = _delete_blob_rows(chunk)
        report.blobs_deleted += len(found)
        report.blob_bytes_freed += sum(size for _, _, size in found)
        if not dry_run:
            for sha, key, _ in found:
                # A concurrent ingest may have stored the same bytes again since.
                if not Blob.objects.filter(pk=sha).exists():
                    storage.delete(key)

    for key, is_temp in _stray_files(storage):
        if storage.get_modified_time(key) > cutoff:
            report.skipped_recent += 1
            continue
        size = storage.size(key)
        if not dry_run:
            storage.delete(key)
        if is_temp:
            report.temp_files_deleted += 1
        else:
            report.orphan_files_deleted += 1
        report.orphan_bytes_freed += size
    return report


def _delete_blob_rows(chunk: list[str]) -> list[tuple[str, str, int]]:
    with transaction.atomic():
        # Re-checked inside the transaction: a reference may have arrived since the scan.
        found = list(
            unreferenced_blobs().filter(pk__in=chunk).values_list("sha256", "storage_key", "size")
        )
        Blob.objects.filter(pk__in=[sha for sha, _, _ in found]).delete()
    return found


def _stray_files(storage: Storage) -> Iterator[tuple[str, bool]]:
    """(key, is_temp) for files under the aa/bb/ layout that no Blob row accounts for."""
    for batch in _chunks(_stored_files(storage), GC_CHUNK):
        names = {key.rsplit("/", 1)[-1]: key for key in batch}
        hashes = [name for name in names if is_valid_sha256(name)]
        known = set(Blob.objects.filter(pk__in=hashes).values_list("sha256", flat=True))
        for name, key in names.items():
            if name.startswith(TEMP_PREFIX):
                yield key, True
            elif is_valid_sha256(name) and name not in known:
                yield key, False


def _stored_files(storage: Storage) -> Iterator[str]:
    try:
        top, _ = storage.listdir("")
    except FileNotFoundError:
        return
    for first in sorted(top):
        if len(first) != 2:
            continue
        second_level, _ = storage.listdir(first)
        for second in sorted(second_level):
            _, files = storage.listdir(f"{first}/{second}")
            for name in files:
                yield f"{first}/{second}/{name}"


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class BlobStats:
    blob_count: int
    total_bytes: int
    reference_count: int
    unreferenced_count: int
    unreferenced_bytes: int
    by_kind: list[dict]
    by_mime: list[dict]


def blob_stats() -> BlobStats:
    totals = Blob.objects.aggregate(count=Count("pk"), size=Sum("size"))
    unreferenced = unreferenced_blobs().aggregate(count=Count("pk"), size=Sum("size"))
    by_kind = list(
        BlobReference.objects.values("kind")
        .annotate(references=Count("pk"), blobs=Count("blob", distinct=True))
        .order_by("kind")
    )
    by_mime = list(
        Blob.objects.values("mime_type")
        .annotate(blobs=Count("pk"), bytes=Sum("size"))
        .order_by("-bytes", "mime_type")
    )
    return BlobStats(
        blob_count=totals["count"],
        total_bytes=totals["size"] or 0,
        reference_count=BlobReference.objects.count(),
        unreferenced_count=unreferenced["count"],
        unreferenced_bytes=unreferenced["size"] or 0,
        by_kind=by_kind,
        by_mime=by_mime,
    )
