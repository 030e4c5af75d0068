"""Embedders and the in-memory vector index used by semantic search.

The default embedder needs no download: it hashes words, word pairs and
character trigrams into a fixed number of signed buckets (the "hashing trick")
and L2-normalises the result. It knows nothing of synonyms, but paraphrases
share stems and trigrams, which is enough to rank them above unrelated text.
Clients may instead send vectors from any model; each model is its own
`EmbeddingSpace` with fixed dimensions, and spaces are never compared.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from django.db import connection, transaction

from alchemy_site.errors import Invalid
from prompts.models import EmbeddingSpace, Prompt

DEFAULT_EMBEDDER = "alchemy-hash-384"

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
        "your",
        "you",
        "me",
        "my",
        "please",
        "can",
        "could",
        "would",
        "should",
        "will",
    ]
)


class Embedder(Protocol):
    name: str
    provider: str
    dimensions: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


@lru_cache(maxsize=200_000)
def _bucket(feature: str, dimensions: int) -> tuple[int, float]:
    # blake2b, not hash(): Python salts str hashes per process, vectors must be stable.
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimensions, (1.0 if (value >> 63) & 1 else -1.0)


def _features(text: str) -> list[tuple[str, float]]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
    features: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
    features += [(f"b:{a}_{b}", 0.5) for a, b in zip(words, words[1:], strict=False)]
    for word in words:
        padded = f"<{word}>"
        features += [(f"c:{padded[i : i + 3]}", 0.3) for i in range(len(padded) - 2)]
    return features


class HashingEmbedder:
    provider = "alchemy"

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions
        self.name = f"alchemy-hash-{dimensions}"

    def embed(self, texts: list[str]) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, weight in _features(text):
                index, sign = _bucket(feature, self.dimensions)
                matrix[row, index] += sign * weight
        return normalise(matrix)


_EMBEDDERS: dict[str, Embedder] = {DEFAULT_EMBEDDER: HashingEmbedder(384)}


def register_embedder(embedder: Embedder) -> None:
    """Make another embedder (e.g. a local sentence-transformer) available by name."""
    _EMBEDDERS[embedder.name] = embedder


def get_embedder(name: str | None = None) -> Embedder:
    """The embedder called `name`; the offline default when `name` is None or empty."""
    key = name or DEFAULT_EMBEDDER
    try:
        return _EMBEDDERS[key]
    except KeyError:
        known = ", ".join(sorted(_EMBEDDERS))
        raise Invalid(f"Unknown embedder {key!r}; known embedders: {known}.") from None


def is_local_embedder(name: str) -> bool:
    return name in _EMBEDDERS


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(raw: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype="<f4")


def parse_vector(values: list[float], *, model: str, dimensions: Any = ...) -> np.ndarray:
    """A client vector as float32, checked finite, non-empty and of the model's dimensions.

    `dimensions` is the model's (`space_dimensions`, None for a new space) when the caller
    has looked it up already; otherwise it is looked up here.
    """
    with np.errstate(over="ignore"):  # beyond float32's range is inf, refused below
        vector = np.asarray(values, dtype=np.float32)
    if vector.ndim != 1 or vector.size == 0:
        raise Invalid("An embedding must be a non-empty list of numbers.")
    if not np.all(np.isfinite(vector)):
        raise Invalid(
            "An embedding's numbers must be finite and within ±3.4e38 (they are stored as "
            "32-bit floats)."
        )
    expected = space_dimensions(model) if dimensions is ... else dimensions
    if expected is not None and expected != vector.size:
        raise Invalid(
            f"Embedding model {model!r} has {expected} dimensions; got a vector of {vector.size}.",
            expected_dimensions=expected,
            got_dimensions=int(vector.size),
        )
    return vector


def space_dimensions(model: str) -> int | None:
    if is_local_embedder(model):
        return get_embedder(model).dimensions
    return EmbeddingSpace.objects.filter(model=model).values_list("dimensions", flat=True).first()


def new_token() -> int:
    # Random, not a counter: a space deleted and re-created (a restore, a rolled-back
    # test) must never reuse a token an old in-memory matrix still carries.
    return secrets.randbits(62)


def touch_space(*, model: str, dimensions: int) -> None:
    """Record a change in `model`'s space (creating it); call inside the write's transaction."""
    if not model:
        return
    space, created = EmbeddingSpace.objects.get_or_create(
        model=model, defaults={"dimensions": dimensions, "version": new_token()}
    )
    if space.dimensions != dimensions:
        raise Invalid(
            f"Embedding model {model!r} has {space.dimensions} dimensions; got {dimensions}.",
            expected_dimensions=space.dimensions,
            got_dimensions=dimensions,
        )
    if not created:
        mark_changed([model])


def mark_changed(models: Iterable[str]) -> None:
    """Tell every process that these spaces' rows changed (their matrices are stale)."""
    names = [m for m in set(models) if m]
    if names:
        EmbeddingSpace.objects.filter(model__in=names).update(version=new_token())


@dataclass
class _Matrix:
    version: int
    ids: list
    positions: dict
    matrix: np.ndarray


class VectorIndex:
    """A process-local, normalised matrix per embedding model, rebuilt only when stale."""

    def __init__(self) -> None:
        self._cache: dict[str, _Matrix] = {}
        self._lock = threading.Lock()
        self.builds = 0

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def get(self, model: str) -> _Matrix | None:
        version = _space_version(model)
        if version is None:
            return None
        with self._lock:
            cached = self._cache.get(model)
            if cached is not None and cached.version == version:
                return cached
        built = self._build(model)
        with self._lock:
            self._cache[model] = built
        return built

    def _build(self, model: str) -> _Matrix:
        # Read the version and the rows in one transaction so they agree.
        with transaction.atomic():
            version = EmbeddingSpace.objects.filter(model=model).values_list("version", flat=True)
            version_now = version.first() or 0
            rows = list(
                Prompt.objects.filter(embedding_model=model, embedding__isnull=False)
                .order_by()
                .values_list("id", "embedding")
            )
        self.builds += 1
        ids = [row[0] for row in rows]
        if rows:
            matrix = normalise(np.vstack([from_bytes(row[1]) for row in rows]))
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        return _Matrix(version_now, ids, {pk: i for i, pk in enumerate(ids)}, matrix)

    def scores(self, *, model: str, query: np.ndarray) -> tuple[_Matrix, np.ndarray] | None:
        """The current matrix of `model` and every row's cosine with `query` (None: no rows)."""
        entry = self.get(model)
        if entry is None or not entry.ids:
            return None
        if entry.matrix.shape[1] != query.size:
            raise Invalid(
                f"Embedding model {model!r} has {entry.matrix.shape[1]} dimensions; "
                f"the query vector has {query.size}."
            )
        return entry, entry.matrix @ normalise(query)

    def top_k(
        self, *, model: str, query: np.ndarray, candidate_ids: list | None, limit: int
    ) -> list[tuple[object, float]]:
        """(prompt id, cosine) pairs, best first, among `candidate_ids` (None: all)."""
        scored = self.scores(model=model, query=query)
        if scored is None:
            return []
        entry, scores = scored
        positions = None
        if candidate_ids is not None:
            positions = np.fromiter(
                (entry.positions[pk] for pk in candidate_ids if pk in entry.positions),
                dtype=np.int64,
            )
        best = best_positions(scores, positions, limit)
        return [(entry.ids[i], float(scores[i])) for i in best]


def _space_version(model: str) -> int | None:
    """The space's change counter (None: no such space), as a plain statement: every
    search asks, and through the ORM compiling it cost ~0.2 ms of a 6 ms search."""
    table = connection.ops.quote_name(EmbeddingSpace._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version FROM {table} WHERE model = %s", [model])
        row = cursor.fetchone()
    return None if row is None else row[0]


def best_positions(scores: np.ndarray, positions: np.ndarray | None, limit: int) -> np.ndarray:
    """Up to `limit` of `positions` (None: all rows), highest score first."""
    chosen = scores if positions is None else scores[positions]
    take = min(limit, chosen.size)
    if take <= 0:
        return np.zeros(0, dtype=np.int64)
    best = np.argpartition(-chosen, take - 1)[:take]
    best = best[np.argsort(-chosen[best], kind="stable")]
    return best if positions is None else positions[best]


vector_index = VectorIndex()
