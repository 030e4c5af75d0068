"""Base64 images and audio in span attributes move to blob storage, through /v1/traces."""

from __future__ import annotations

import hashlib
from http import HTTPStatus

import pytest
from django.conf import settings
from django.urls import reverse
from google.protobuf import json_format

from blobs.models import Blob, BlobReference
from blobs.services import blob_uri
from tests.tracing.factories import (
    b64,
    data_url,
    export_of,
    otlp_span,
    png_bytes,
    wav_bytes,
)
from tracing.models import Span

pytestmark = pytest.mark.django_db

TRACE = "5b8efff798038103d269b633813fc60c"
IMAGE_SPAN, AUDIO_SPAN = "eee19b7ec3c1b174", "eee19b7ec3c1b175"


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def stored_file(blob: Blob) -> bytes:
    return (settings.ALCHEMY_HOME / "blobs" / blob.storage_key).read_bytes()


def blob_files() -> list:
    root = settings.ALCHEMY_HOME / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def post_protobuf(client, export):
    return client.post(
        reverse("otlp-traces"), export.SerializeToString(), content_type="application/x-protobuf"
    )


def post_json(client, export):
    body = json_format.MessageToJson(export)
    return client.post(reverse("otlp-traces"), body, content_type="application/json")


def image_and_audio_export(image: bytes, audio: bytes):
    return export_of(
        otlp_span(TRACE, IMAGE_SPAN, "draw", attributes={"gen_ai.output.image": data_url(image)}),
        otlp_span(TRACE, AUDIO_SPAN, "speak", attributes={"gen_ai.output.audio": b64(audio)}),
    )


def assert_stored(span: Span, key: str, content: bytes, mime: str, kind: str) -> None:
    assert span.attributes[key] == blob_uri(sha(content))
    blob = Blob.objects.get(pk=sha(content))
    assert (blob.size, blob.mime_type) == (len(content), mime)
    assert stored_file(blob) == content
    reference = BlobReference.objects.get(span=span)
    assert (reference.blob_id, reference.location, reference.kind) == (
        blob.sha256,
        f"attributes.{key}",
        kind,
    )
    assert reference.eval_id is None and reference.test_idx is None


@pytest.mark.parametrize("post", [post_protobuf, post_json], ids=["protobuf", "json"])
def test_a_data_url_image_and_raw_base64_audio_become_blobs_the_spans_refer_to(api_client, post):
    image, audio = png_bytes(), wav_bytes()

    response = post(api_client, image_and_audio_export(image, audio))

    assert response.status_code == HTTPStatus.OK
    draw, speak = Span.objects.get(name="draw"), Span.objects.get(name="speak")
    assert_stored(draw, "gen_ai.output.image", image, "image/png", "image")
    assert_stored(speak, "gen_ai.output.audio", audio, "audio/wav", "audio")
    assert len(blob_files()) == 2


def test_media_in_a_span_event_is_stored_too(api_client):
    image = png_bytes(seed=2)
    span = otlp_span(TRACE, IMAGE_SPAN, "draw")
    event = span.events.add(name="gen_ai.choice", time_unix_nano=span.start_time_unix_nano)
    event.attributes.add(key="message").value.string_value = data_url(image)

    post_protobuf(api_client, export_of(span))

    stored = Span.objects.get()
    assert stored.events[0]["attributes"]["message"] == blob_uri(sha(image))
    assert stored.blob_references.get().location == "events[0].attributes.message"


def test_a_secret_keyed_attribute_holding_base64_is_redacted_and_never_stored(api_client):
    attributes = {
        "x-api-key": data_url(png_bytes(seed=3)),
        "image.secret": b64(png_bytes(seed=4)),
    }

    post_protobuf(api_client, export_of(otlp_span(TRACE, IMAGE_SPAN, "s", attributes=attributes)))

    assert Span.objects.get().attributes == {
        "x-api-key": "[REDACTED]",
        "image.secret": "[REDACTED]",
    }
    assert not Blob.objects.exists()
    assert not blob_files()


def test_base64_under_one_kilobyte_stays_inline_and_is_truncated_as_before(api_client):
    small = data_url(png_bytes(seed=5, side=12))  # 500-odd bytes, 700-odd base64 chars
    attributes = {"preview.image": small}  # not a body key: the 400-character limit

    post_protobuf(api_client, export_of(otlp_span(TRACE, IMAGE_SPAN, "s", attributes=attributes)))

    stored = Span.objects.get().attributes["preview.image"]
    assert stored.startswith(small[:400] + "… [truncated ")
    assert not Blob.objects.exists()


def test_base64_under_an_unremarkable_key_is_not_taken_for_media(api_client):
    attributes = {"request.id": b64(png_bytes(seed=6))}

    post_protobuf(api_client, export_of(otlp_span(TRACE, IMAGE_SPAN, "s", attributes=attributes)))

    assert "truncated" in Span.objects.get().attributes["request.id"]
    assert not Blob.objects.exists()


def test_raw_base64_of_an_unknown_type_is_kept_as_a_download(api_client):
    content = bytes(range(256)) * 8
    attributes = {"gen_ai.output.audio": b64(content)}

    post_protobuf(api_client, export_of(otlp_span(TRACE, AUDIO_SPAN, "s", attributes=attributes)))

    blob = Blob.objects.get()
    assert (blob.mime_type, stored_file(blob)) == ("application/octet-stream", content)
    assert BlobReference.objects.get().kind == "other"


def test_media_over_the_blob_limit_is_truncated_and_the_rest_of_the_export_stored(
    api_client, settings
):
    settings.BLOB_MAX_BYTES = 2048
    fits, too_big = png_bytes(seed=7), png_bytes(seed=8, side=40)
    attributes = {"first.image": data_url(fits), "second.image": data_url(too_big)}

    response = post_protobuf(
        api_client, export_of(otlp_span(TRACE, IMAGE_SPAN, "s", attributes=attributes))
    )

    assert response.status_code == HTTPStatus.OK
    stored = Span.objects.get().attributes
    assert stored["first.image"] == blob_uri(sha(fits))
    assert "truncated" in stored["second.image"]
    assert list(Blob.objects.values_list("pk", flat=True)) == [sha(fits)]


def test_replaying_the_same_export_stores_each_span_and_reference_once(api_client):
    export = image_and_audio_export(png_bytes(seed=9), wav_bytes(seed=9))

    for post in (post_protobuf, post_json, post_protobuf):
        assert post(api_client, export).status_code == HTTPStatus.OK

    assert Span.objects.count() == 2
    assert Blob.objects.count() == 2
    assert BlobReference.objects.count() == 2
    assert len(blob_files()) == 2


def test_the_same_image_in_two_spans_is_one_blob_with_a_reference_from_each(api_client):
    url = data_url(png_bytes(seed=10))
    export = export_of(
        otlp_span(TRACE, IMAGE_SPAN, "a", attributes={"input.image": url}),
        otlp_span(TRACE, AUDIO_SPAN, "b", attributes={"input.image": url, "again.image": url}),
    )

    post_protobuf(api_client, export)

    assert Blob.objects.count() == 1
    assert sorted(BlobReference.objects.values_list("span__name", "location")) == [
        ("a", "attributes.input.image"),
        ("b", "attributes.again.image"),
        ("b", "attributes.input.image"),
    ]


def test_a_replay_with_different_media_under_the_same_span_id_records_no_new_use(api_client):
    first, second = png_bytes(seed=11), png_bytes(seed=12)
    for image in (first, second):
        attributes = {"gen_ai.output.image": data_url(image)}
        post_protobuf(
            api_client, export_of(otlp_span(TRACE, IMAGE_SPAN, "s", attributes=attributes))
        )

    assert Span.objects.get().attributes["gen_ai.output.image"] == blob_uri(sha(first))
    assert list(BlobReference.objects.values_list("blob_id", flat=True)) == [sha(first)]


def test_full_blob_storage_answers_503_with_a_long_retry_after_and_stores_nothing(
    api_client, monkeypatch
):
    import errno

    from django.core.files.storage import FileSystemStorage

    def no_space(self, name, content, max_length=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "save", no_space)
    response = post_protobuf(api_client, image_and_audio_export(png_bytes(seed=21), wav_bytes()))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "30"
    assert not Span.objects.exists() and not Blob.objects.exists()


def test_a_full_database_answers_503_not_a_server_error(api_client, monkeypatch):
    from django.db import OperationalError

    from tracing import services

    def full(**kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(services, "ingest_request", full)
    response = post_json(api_client, image_and_audio_export(png_bytes(seed=22), wav_bytes()))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "30"
    assert b"Out of storage space" in response.content
