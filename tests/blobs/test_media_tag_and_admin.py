from __future__ import annotations

from http import HTTPStatus

import pytest
from django.template import Context, Template
from django.urls import reverse

from blobs.models import Blob
from blobs.services import externalize_results, save_references
from tests.blobs.conftest import data_url, payload

pytestmark = pytest.mark.django_db


def ingest(eval_id: str, *outputs: str) -> list[dict]:
    results = [
        {"testIdx": i, "promptIdx": 0, "response": {"output": output}}
        for i, output in enumerate(outputs)
    ]
    save_references(externalize_results(eval_id=eval_id, results=results))
    return results


def render(value) -> str:
    return Template("{% load blobs %}{% blob_media value %}").render(Context({"value": value}))


def test_the_media_tag_shows_images_inline_audio_with_a_player_and_svg_as_a_link(
    an_eval, django_assert_num_queries
):
    results = ingest(
        an_eval.id,
        data_url(payload(2048, seed=1), "image/png"),
        data_url(payload(2048, seed=2), "audio/mpeg"),
        data_url(payload(2048, seed=3), "image/svg+xml"),
    )
    response = {"outputs": [r["response"]["output"] for r in results]}

    with django_assert_num_queries(1):
        html = render(response)

    assert html.count("<img ") == 1
    assert html.count("<audio controls") == 1
    assert "Download image/svg+xml" in html


def test_the_media_tag_renders_nothing_for_plain_results_without_queries(
    django_assert_num_queries,
):
    with django_assert_num_queries(0):
        assert render({"output": "just text"}).strip() == ""


def test_a_configured_blobs_storage_is_used_instead_of_alchemy_home(an_eval, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "blobs.storage.ContentAddressedFileSystemStorage",
            "OPTIONS": {"location": tmp_path / "elsewhere"},
        },
    }

    ingest(an_eval.id, data_url(payload(2048)))

    sha = Blob.objects.get().sha256
    assert (tmp_path / "elsewhere" / sha[:2] / sha[2:4] / sha).is_file()
    assert not (settings.ALCHEMY_HOME / "blobs").exists()


def test_the_admin_lists_blobs_with_reference_counts_in_constant_queries(
    client, staff_user, make_eval, django_assert_max_num_queries
):
    for n in range(5):
        ingest(make_eval(f"eval-{n}").id, *(data_url(payload(2048, seed=s)) for s in range(n + 1)))
    client.force_login(staff_user)

    with django_assert_max_num_queries(8):
        blobs_page = client.get(reverse("admin:blobs_blob_changelist"))
    with django_assert_max_num_queries(8):
        refs_page = client.get(reverse("admin:blobs_blobreference_changelist"))

    assert blobs_page.status_code == refs_page.status_code == HTTPStatus.OK
    assert blobs_page.context["cl"].result_list[0].reference_count >= 1
