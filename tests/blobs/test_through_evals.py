"""Blobs as the evals write path uses them: add_results, the API read-back, delete_eval, gc."""

from __future__ import annotations

import base64
import hashlib
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from alchemy_site.errors import TooLarge
from blobs.models import Blob, BlobReference
from evals.models import EvalResult
from evals.services import add_results, create_eval, delete_eval
from tests.blobs.conftest import data_url, payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_eval():
    return create_eval(config={}, prompts=[{"raw": "Draw {{thing}}", "label": "draw"}])


def result(test_idx: int, **response) -> dict:
    return {"testIdx": test_idx, "promptIdx": 0, "success": True, "score": 1, "response": response}


def test_add_results_stores_references_and_the_api_serves_the_bytes(running_eval, api_client):
    image, audio = payload(4096, seed=1), payload(2048, seed=2)
    batch = [
        result(0, output=data_url(image)),
        result(1, output="ok", audio={"data": base64.b64encode(audio).decode(), "format": "wav"}),
        result(2, output="plain"),
    ]

    add_results(eval=running_eval, results=batch)

    rows = {r.test_idx: r.response for r in EvalResult.objects.filter(eval=running_eval)}
    image_sha, audio_sha = hashlib.sha256(image).hexdigest(), hashlib.sha256(audio).hexdigest()
    assert rows[0]["output"] == f"promptfoo://blob/{image_sha}"
    assert rows[1]["audio"]["data"] == f"promptfoo://blob/{audio_sha}"
    assert rows[2]["output"] == "plain"
    assert set(BlobReference.objects.values_list("test_idx", "location", "kind")) == {
        (0, "response.output", "image"),
        (1, "response.audio.data", "audio"),
    }
    response = api_client.get(reverse("api:blob", kwargs={"sha256": audio_sha}))
    assert response.status_code == HTTPStatus.OK
    assert b"".join(response.streaming_content) == audio
    assert response["Content-Type"] == "audio/wav"


def test_an_oversized_payload_rejects_the_whole_batch(running_eval, settings):
    settings.BLOB_MAX_BYTES = 2048
    batch = [result(0, output=data_url(payload(1500))), result(1, output=data_url(payload(4096)))]

    with pytest.raises(TooLarge):
        add_results(eval=running_eval, results=batch)

    assert not EvalResult.objects.exists()
    assert not Blob.objects.exists()


def test_deleting_an_eval_then_gc_frees_its_blobs(running_eval):
    other = create_eval(config={}, prompts=[{"raw": "Other"}])
    shared, own = payload(2048, seed=1), payload(2048, seed=2)
    add_results(eval=running_eval, results=[result(0, output=data_url(shared)),
                                            result(1, output=data_url(own))])  # fmt: skip
    add_results(eval=other, results=[result(0, output=data_url(shared))])

    delete_eval(eval=running_eval)
    out = StringIO()
    call_command("blobs", "gc", "--min-age", "0", stdout=out)

    assert list(Blob.objects.values_list("sha256", flat=True)) == [
        hashlib.sha256(shared).hexdigest()
    ]
    assert BlobReference.objects.filter(eval=other).count() == 1
    assert "Deleted 1 unreferenced blobs" in out.getvalue()


def test_exports_keep_references_unless_asked_to_include_media(running_eval, api_client, tmp_path):
    import json

    image = payload(4096, seed=7)
    add_results(eval=running_eval, results=[result(0, output=data_url(image))])
    sha = hashlib.sha256(image).hexdigest()

    kept = tmp_path / "kept.json"
    call_command("export_eval", running_eval.id, "-o", str(kept), stdout=StringIO())
    inlined = tmp_path / "inlined.json"
    call_command(
        "export_eval", running_eval.id, "--include-media", "-o", str(inlined), stdout=StringIO()
    )

    def output_of(path):
        return json.loads(path.read_text())["results"]["results"][0]["response"]["output"]

    assert output_of(kept) == f"promptfoo://blob/{sha}"
    assert output_of(inlined) == data_url(image)
    response = api_client.get(
        f"/api/evals/{running_eval.id}/export", {"format": "jsonl", "include_media": "true"}
    )
    assert response.status_code == HTTPStatus.OK
    line = b"".join(response.streaming_content).decode().splitlines()[0]
    assert json.loads(line)["response"]["output"] == data_url(image)
