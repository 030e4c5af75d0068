from __future__ import annotations

import hashlib
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse

from blobs.services import externalize_results
from tests.blobs.conftest import data_url, payload

pytestmark = pytest.mark.django_db

CACHE = "private, max-age=31536000, immutable"


@pytest.fixture
def stored(an_eval):
    """Store `content` as `mime` and return its sha256."""

    def store(content: bytes, mime: str = "image/png") -> str:
        externalize_results(
            eval_id=an_eval.id, results=[{"response": {"output": data_url(content, mime)}}]
        )
        return hashlib.sha256(content).hexdigest()

    return store


def url(sha: str) -> str:
    return reverse("api:blob", kwargs={"sha256": sha})


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_it_serves_the_bytes_with_type_etag_and_immutable_caching(api_client, stored):
    content = payload(5000)
    sha = stored(content)

    response = api_client.get(url(sha))

    assert response.status_code == HTTPStatus.OK
    assert body(response) == content
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == "5000"
    assert response["ETag"] == f'"{sha}"'
    assert response["Cache-Control"] == CACHE
    assert response["Accept-Ranges"] == "bytes"
    assert "attachment" not in response.get("Content-Disposition", "")


def test_it_requires_authentication(client: Client, stored):
    sha = stored(payload(2048))

    assert client.get(url(sha)).status_code == HTTPStatus.UNAUTHORIZED


def test_a_logged_in_browser_session_can_fetch_blobs(logged_in_client, stored):
    sha = stored(payload(2048))

    assert logged_in_client.get(url(sha)).status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "bad",
    [
        "0" * 64,  # well-formed, unknown
        "0" * 63,
        "Z" * 64,
        "..%2F..%2Fsecret_key",
        "..",
        "%2e%2e%2f%2e%2e%2falchemy.db",
        "aa%2Fbb%2F" + "0" * 64,
        "0" * 64 + "%00",
    ],
)
def test_unknown_or_malformed_hashes_are_not_found(api_client, stored, bad):
    stored(payload(2048))

    response = api_client.get(f"/api/blobs/{bad}")

    assert response.status_code == HTTPStatus.NOT_FOUND


def test_a_matching_if_none_match_gets_not_modified(api_client, stored):
    sha = stored(payload(2048))

    response = api_client.get(url(sha), headers={"If-None-Match": f'W/"x", "{sha}"'})

    assert response.status_code == HTTPStatus.NOT_MODIFIED
    assert response["ETag"] == f'"{sha}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=4000-", 4000, 4999), ("bytes=-10", 4990, 4999),
     ("bytes=4990-9999", 4990, 4999)],
)  # fmt: skip
def test_a_range_request_gets_partial_content(api_client, stored, header, start, end):
    content = payload(5000, seed=7)
    sha = stored(content, "audio/wav")

    response = api_client.get(url(sha), headers={"Range": header})

    assert response.status_code == HTTPStatus.PARTIAL_CONTENT
    assert body(response) == content[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/5000"
    assert response["Content-Length"] == str(end - start + 1)
    assert response["Content-Type"] == "audio/wav"


def test_a_range_past_the_end_is_not_satisfiable(api_client, stored):
    sha = stored(payload(5000))

    response = api_client.get(url(sha), headers={"Range": "bytes=5000-"})

    assert response.status_code == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
    assert response["Content-Range"] == "bytes */5000"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "nonsense"])
def test_a_range_it_cannot_honour_gets_the_whole_blob(api_client, stored, header):
    content = payload(2048)
    sha = stored(content)

    response = api_client.get(url(sha), headers={"Range": header})

    assert response.status_code == HTTPStatus.OK
    assert body(response) == content


def test_a_stale_if_range_gets_the_whole_blob(api_client, stored):
    sha = stored(payload(2048))

    response = api_client.get(url(sha), headers={"Range": "bytes=0-9", "If-Range": '"other"'})

    assert response.status_code == HTTPStatus.OK


@pytest.mark.parametrize(
    "mime", ["image/svg+xml", "text/html", "application/pdf", "application/octet-stream"]
)
def test_types_a_browser_could_run_are_served_as_attachments(api_client, stored, mime):
    sha = stored(payload(2048), mime)

    response = api_client.get(url(sha))

    assert response["Content-Type"] == mime
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("mime", ["image/jpeg", "image/webp", "audio/mpeg", "video/mp4"])
def test_media_types_are_served_inline(api_client, stored, mime):
    sha = stored(payload(2048), mime)

    response = api_client.get(url(sha))

    assert "attachment" not in response.get("Content-Disposition", "")


def test_a_row_whose_file_is_gone_is_not_found(api_client, stored, settings):
    sha = stored(payload(2048))
    (settings.ALCHEMY_HOME / "blobs" / sha[:2] / sha[2:4] / sha).unlink()

    assert api_client.get(url(sha)).status_code == HTTPStatus.NOT_FOUND
