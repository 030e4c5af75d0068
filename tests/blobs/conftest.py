from __future__ import annotations

import base64

import pytest
from django.utils import timezone

from blobs.services import externalize_results, save_references
from evals.models import Eval


def data_url(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def payload(size: int, seed: int = 0) -> bytes:
    """`size` bytes that differ per seed (so each seed is its own blob)."""
    return (seed.to_bytes(4, "big") * (size // 4 + 1))[:size]


def ingest_results(eval_id: str, *contents: bytes) -> list[str]:
    """One result per content (test_idx 0, 1, …) with it as a data URL; the blobs' hashes."""
    results = [
        {"testIdx": i, "promptIdx": 0, "response": {"output": data_url(content)}}
        for i, content in enumerate(contents)
    ]
    refs = externalize_results(eval_id=eval_id, results=results)
    save_references(refs)
    return [ref.blob_sha256 for ref in refs]


@pytest.fixture
def make_eval(db):
    def make(eval_id: str = "eval-abc-2025-01-13T10:30:45") -> Eval:
        return Eval.objects.create(id=eval_id, created_at=timezone.now())

    return make


@pytest.fixture
def an_eval(make_eval) -> Eval:
    return make_eval()
