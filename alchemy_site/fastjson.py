"""JSON text for the hot paths (result rows in and out), through orjson.

orjson encodes a result's JSON columns about four times and decodes them about twice as
fast as the standard library. Its output is compact UTF-8 and it writes NaN/Infinity as
null (valid JSON, which SQLite's JSON functions need). It refuses integers beyond 64 bits
and non-string keys; those values take the standard library's path, so any value the
stdlib can write is still written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """`value` as JSON text (str, as the database drivers take it)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: huge int, non-str key, unknown type
        return json.dumps(_finite(value), default=str, ensure_ascii=False)


def dumps_bytes(value: Any, default: Callable[[Any], Any]) -> bytes:
    """`value` as UTF-8 JSON; datetimes and what orjson can't write go through `default`.

    Datetimes are passed to `default` so they keep the format `default` gives them (the
    API's: Django's JSON encoder), not orjson's.
    """
    try:
        return orjson.dumps(value, default=default, option=_BYTES_OPTIONS)
    except TypeError:  # a huge int, or `default` gave up
        return json.dumps(_finite(value), default=default, ensure_ascii=False).encode()


_BYTES_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _finite(value: Any) -> Any:
    """NaN and ±Infinity as null, as orjson writes them (json.dumps would write NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def loads(text: str | None) -> Any:
    """Parse JSON text for display; NULL (None) stays None.

    As json.loads would, except that an integer beyond 64 bits comes back as a float (orjson
    has no big integers). Checking every text for one cost more than parsing it, so this is
    for what a page shows; exports and the API's result detail keep json.loads.
    """
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # What orjson rejects but Python's json reads (NaN literals written by older code).
        return json.loads(text)
