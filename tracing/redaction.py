"""Secrets out, long strings shortened: applied to every attribute before it is stored.

Span attributes go through `redact_attributes`, then media moves to blobs, then
`clean_attributes` (which redacts again, harmlessly) shortens what is left.

Keys are matched case-insensitively with separators (`-`, `.`, `_`, spaces)
dropped, so `Authorization`, `x-api-key`, `apiKey`, `privateKey` and `db.password`
are all caught, at any depth of nested maps and lists.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from django.conf import settings

REDACTED = "[REDACTED]"

SENSITIVE_PARTS = (
    "authorization",
    "cookie",
    "token",
    "api_key",
    "apikey",
    "secret",
    "password",
    "passphrase",
    "private_key",
)
# Matched against keys with their separators dropped: `api_key`, `api-key`, `apiKey`
# and `API_KEY` all read `apikey`.
_COMPACT_PARTS = tuple(dict.fromkeys(part.replace("_", "") for part in SENSITIVE_PARTS))
# A tokenizer's name is not a credential.
_TOKENIZER = re.compile(r"tokenizers?")
# Token *counts* are what cost tracking reads (gen_ai.usage.input_tokens,
# llm.token_count.total, max_tokens): kept while they are numbers, redacted as text
# (`refresh_tokens`, `auth_token_usage` …) since text there may be a credential.
_TOKEN_USAGE = re.compile(r"tokens|tokencount|tokenusage")
# Attributes that carry whole prompts, completions or HTTP bodies get the larger limit.
BODY_PARTS = ("body", "prompt", "completion", "content", "input", "output", "message", "response")

_SEPARATORS = re.compile(r"[-._ ]")
_NOT_SECRET, _COUNT, _SECRET = 0, 1, 2


def _fold(key: str) -> str:
    return _SEPARATORS.sub("", key.lower())


def _names_secret(folded: str) -> bool:
    return any(part in folded for part in _COMPACT_PARTS)


# Spans of one service repeat the same few keys; each is folded and matched once.
@functools.lru_cache(maxsize=4096)
def _secrecy(key: str) -> int:
    folded = _fold(key)
    if not _names_secret(folded):
        return _NOT_SECRET
    folded = _TOKENIZER.sub("", folded)
    if not _names_secret(folded):
        return _NOT_SECRET
    return _SECRET if _names_secret(_TOKEN_USAGE.sub("", folded)) else _COUNT


def hides(key: str, value: Any) -> bool:
    """Whether `value`, stored under `key`, is redacted.

    A token-count key keeps numbers (and maps, whose own keys are checked) but not text.
    """
    secrecy = _secrecy(key)
    if secrecy == _COUNT:
        return isinstance(value, str) and not value.isdigit()
    return secrecy == _SECRET


@functools.lru_cache(maxsize=4096)
def is_body(key: str) -> bool:
    folded = _fold(key)
    return any(part in folded for part in BODY_PARTS)


def body_limit() -> int:
    return settings.OTLP_BODY_MAX_CHARS


def attribute_limit() -> int:
    return settings.OTLP_ATTRIBUTE_MAX_CHARS


def truncate(value: str, limit: int) -> str:
    # PostgreSQL refuses NUL in text and JSON; SQLite would store it but nothing reads it well.
    value = value.replace("\x00", "\ufffd")
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… [truncated {len(value) - limit} chars]"


def redact_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `attributes` with secrets redacted and nothing shortened yet.

    Ingestion moves media out of this copy before `clean_attributes` truncates it, so
    media is only ever looked for where no secret is left.
    """
    return {key: _redacted(key, value) for key, value in attributes.items()}


def _redacted(key: str, value: Any) -> Any:
    if hides(key, value):
        return REDACTED
    if isinstance(value, dict):
        return redact_attributes(value)
    if isinstance(value, list):
        return [_redacted(key, item) for item in value]
    return value


def clean_value(key: str, value: Any, *, in_body: bool = False) -> Any:
    """Redact `value` if `key` names a secret; else truncate its strings, recursively.

    Whatever sits inside a body-like attribute (a prompt, an HTTP body) keeps the
    body limit however deep it is nested.
    """
    if hides(key, value):
        return REDACTED
    in_body = in_body or is_body(key)
    if isinstance(value, str):
        return truncate(value, body_limit() if in_body else attribute_limit())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity
    if isinstance(value, dict):
        return clean_attributes(value, in_body=in_body)
    if isinstance(value, list):
        return [clean_value(key, item, in_body=in_body) for item in value]
    return value


def clean_attributes(attributes: dict[str, Any], *, in_body: bool = False) -> dict[str, Any]:
    """A redacted, truncated copy of `attributes`."""
    return {
        truncate(key, 255): clean_value(key, value, in_body=in_body)
        for key, value in attributes.items()
    }
