from __future__ import annotations

import base64
import hashlib

import pytest
from django.conf import settings

from alchemy_site.errors import TooLarge
from blobs.models import Blob, BlobReference
from blobs.services import (
    externalize_results,
    holds_media_marker,
    inline_blobs,
    save_references,
    texts_with_media_marker,
)
from tests.blobs.conftest import data_url, payload

pytestmark = pytest.mark.django_db


def blob_files():
    root = settings.ALCHEMY_HOME / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_data_url_output_becomes_a_blob_reference_stored_once(an_eval):
    content = payload(4096)
    sha = hashlib.sha256(content).hexdigest()
    results = [{"testIdx": 3, "promptIdx": 1, "response": {"output": data_url(content)}}]

    refs = externalize_results(eval_id=an_eval.id, results=results)

    assert results[0]["response"]["output"] == f"promptfoo://blob/{sha}"
    blob = Blob.objects.get()
    assert (blob.sha256, blob.size, blob.mime_type) == (sha, 4096, "image/png")
    assert blob.storage_key == f"{sha[:2]}/{sha[2:4]}/{sha}"
    assert [f.read_bytes() for f in blob_files()] == [content]
    [ref] = refs
    assert (ref.blob_sha256, ref.eval_id, ref.test_idx, ref.prompt_idx) == (sha, an_eval.id, 3, 1)
    assert (ref.location, ref.kind) == ("response.output", "image")


def test_the_same_bytes_a_thousand_times_occupy_one_file_and_one_row(an_eval):
    url = data_url(payload(2048))
    results = [{"testIdx": i, "promptIdx": 0, "response": {"output": url}} for i in range(1000)]

    refs = externalize_results(eval_id=an_eval.id, results=results)
    save_references(refs)

    assert Blob.objects.count() == 1
    assert len(blob_files()) == 1
    assert BlobReference.objects.count() == 1000


def test_data_below_one_kilobyte_stays_inline_and_from_one_kilobyte_is_stored(an_eval):
    small, exact = data_url(payload(1023, seed=1)), data_url(payload(1024, seed=2))
    results = [
        {"testIdx": 0, "promptIdx": 0, "response": {"output": small}},
        {"testIdx": 1, "promptIdx": 0, "response": {"output": exact}},
    ]

    refs = externalize_results(eval_id=an_eval.id, results=results)

    assert results[0]["response"]["output"] == small
    assert results[1]["response"]["output"].startswith("promptfoo://blob/")
    assert [ref.test_idx for ref in refs] == [1]
    assert Blob.objects.get().size == 1024


def test_oversized_data_is_rejected_before_anything_is_written(an_eval, settings):
    settings.BLOB_MAX_BYTES = 4096
    fine, huge = data_url(payload(2048, seed=1)), data_url(payload(4097, seed=2))
    results = [
        {"testIdx": 0, "promptIdx": 0, "response": {"output": fine}},
        {"testIdx": 1, "promptIdx": 0, "metadata": {"image": huge}},
    ]

    with pytest.raises(TooLarge) as caught:
        externalize_results(eval_id=an_eval.id, results=results)

    assert caught.value.details["index"] == 1
    assert caught.value.details["location"] == "metadata.image"
    assert results[0]["response"]["output"] == fine
    assert not Blob.objects.exists()
    assert blob_files() == []


def test_invalid_base64_stays_inline_untouched(an_eval):
    broken = "data:image/png;base64," + "A" * 2001  # length 1 mod 4: no padding can fix it
    junk_tail = data_url(payload(2048)) + "!!not base64"
    results = [{"testIdx": 0, "promptIdx": 0, "response": {"output": broken, "other": junk_tail}}]

    assert externalize_results(eval_id=an_eval.id, results=results) == []
    assert results[0]["response"] == {"output": broken, "other": junk_tail}
    assert not Blob.objects.exists()


def test_promptfoo_bare_base64_audio_uses_its_format_as_mime_type(an_eval):
    content = payload(3000)
    audio = {"data": base64.b64encode(content).decode(), "format": "mp3", "transcript": "hi"}
    results = [{"testIdx": 0, "promptIdx": 0, "response": {"output": "hi", "audio": audio}}]

    [ref] = externalize_results(eval_id=an_eval.id, results=results)

    assert (ref.location, ref.kind) == ("response.audio.data", "audio")
    assert Blob.objects.get().mime_type == "audio/mpeg"
    assert audio["data"] == f"promptfoo://blob/{ref.blob_sha256}"


def test_media_nested_in_images_metadata_and_markdown_is_found(an_eval):
    first, second = payload(2048, seed=1), payload(2048, seed=2)
    markdown = f"Here: ![cat]({data_url(first, 'image/jpeg')}) done"
    results = [
        {
            "testIdx": 0,
            "promptIdx": 0,
            "response": {"output": markdown, "images": [{"data": data_url(second)}]},
            "metadata": {"deep": [{"x": data_url(second)}]},
        }
    ]

    refs = externalize_results(eval_id=an_eval.id, results=results)

    assert sorted(ref.location for ref in refs) == [
        "metadata.deep[0].x",
        "response.images[0].data",
        "response.output",
    ]
    output = results[0]["response"]["output"]
    assert output.startswith("Here: ![cat](promptfoo://blob/") and output.endswith(") done")
    assert Blob.objects.count() == 2


def test_results_without_media_are_returned_untouched_without_queries(
    an_eval, django_assert_num_queries
):
    results = [
        {"testIdx": i, "promptIdx": 0, "response": {"output": "plain text " * 200}}
        for i in range(100)
    ]

    with django_assert_num_queries(0):
        assert externalize_results(eval_id=an_eval.id, results=results) == []


def test_existing_blob_uris_in_imported_results_are_recorded_as_references(an_eval):
    url = data_url(payload(2048))
    externalize_results(eval_id=an_eval.id, results=[{"response": {"output": url}}])
    sha = Blob.objects.get().sha256
    imported = [
        {"testIdx": 7, "promptIdx": 0, "response": {"output": f"promptfoo://blob/{sha}"}},
        {"testIdx": 8, "promptIdx": 0, "response": {"output": "promptfoo://blob/" + "f" * 64}},
    ]

    refs = externalize_results(eval_id=an_eval.id, results=imported)

    assert [(ref.test_idx, ref.blob_sha256) for ref in refs] == [(7, sha)]


def test_inline_blobs_restores_the_original_data(an_eval):
    image, audio_bytes = payload(2048, seed=1), payload(2048, seed=2)
    audio = {"data": base64.b64encode(audio_bytes).decode(), "format": "wav"}
    original = {"output": data_url(image), "audio": dict(audio)}
    result = {"testIdx": 0, "promptIdx": 0, "response": dict(original, audio=dict(audio))}
    externalize_results(eval_id=an_eval.id, results=[result])

    restored = inline_blobs(result["response"])

    assert restored == original
    assert result["response"]["output"].startswith("promptfoo://blob/")


def test_the_write_paths_batch_check_finds_each_text_holding_a_media_marker():
    texts = [
        "plain",
        "see data:image/png;base64,AAAA",
        '{"audio": {"data": "…"}}',
        "nothing here",
        "promptfoo://blob/" + "a" * 64,
        "base64, twice: base64,",
    ]
    assert texts_with_media_marker(texts) == {1, 2, 4, 5}


def test_data_is_a_marker_only_as_a_key():
    texts = ['{"topic":"data"}', '["data", 1]', '{"data" : "AAAA"}', '{"audio":{"data":"x"}}']
    assert texts_with_media_marker(texts) == {2, 3}
    assert [holds_media_marker(text) for text in texts] == [False, False, True, True]


def test_no_marker_is_made_of_one_texts_end_and_the_next_ones_start():
    assert texts_with_media_marker(['{"da', 'ta"}', "base", "64,"]) == set()
    assert texts_with_media_marker([]) == set()


def test_a_missing_text_holds_no_marker_and_keeps_its_position():
    assert texts_with_media_marker([None, '{"x": 1}', None, "base64,", None]) == {3}
    assert texts_with_media_marker([None, None]) == set()
