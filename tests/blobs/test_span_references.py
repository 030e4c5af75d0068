"""Blob references owned by spans: constraints, GC, deletes and the admin."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from blobs.models import Blob, BlobReference
from blobs.services import delete_references_for_eval
from tests.blobs.conftest import data_url, ingest_results, payload
from tests.tracing.factories import export_of, otlp_span, png_bytes
from tracing.models import Span, Trace
from tracing.services import ingest_request

pytestmark = pytest.mark.django_db

TRACE = "0af7651916cd43dd8448eb211c80319c"


def ingest_span(span_id: str = "b7ad6b7169203331", **attributes) -> Span:
    ingest_request(request=export_of(otlp_span(TRACE, span_id, "s", attributes=attributes)))
    return Span.objects.get(span_id=span_id)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_gc_keeps_a_span_media_blob_until_traces_prune_removes_the_span():
    image = png_bytes()
    ingest_span(**{"gen_ai.output.image": data_url(image)})
    blob = Blob.objects.get()
    two_hours_ago = timezone.now() - timedelta(hours=2)
    Blob.objects.update(created_at=two_hours_ago)  # past the GC grace period
    Trace.objects.update(created_at=timezone.now() - timedelta(days=31))

    run("blobs", "gc")
    assert Blob.objects.filter(pk=sha(image)).exists()

    run("traces", "prune", "--older-than", "30d")
    assert not Span.objects.exists()
    assert not BlobReference.objects.exists()
    output = run("blobs", "gc")

    assert "Deleted 1 unreferenced blobs" in output
    assert not Blob.objects.exists()
    assert not (settings.ALCHEMY_HOME / "blobs" / blob.storage_key).exists()


def test_a_blob_used_by_an_eval_and_a_span_outlives_either_alone(an_eval):
    content = payload(2048, seed=1)
    [shared] = ingest_results(an_eval.id, content)
    ingest_span(**{"input.image": data_url(content)})
    Blob.objects.update(created_at=timezone.now() - timedelta(hours=2))

    delete_references_for_eval(an_eval.id)
    run("blobs", "gc")

    assert Blob.objects.filter(pk=shared).exists()
    assert BlobReference.objects.get().span is not None

    Span.objects.all().delete()
    run("blobs", "gc")

    assert not Blob.objects.exists()


def test_deleting_an_eval_s_references_leaves_span_references_alone(an_eval):
    ingest_results(an_eval.id, payload(2048, seed=2))
    ingest_span(**{"input.image": data_url(payload(2048, seed=3))})

    delete_references_for_eval(an_eval.id)

    assert list(BlobReference.objects.values_list("location", flat=True)) == [
        "attributes.input.image"
    ]


@pytest.mark.parametrize(
    "owner",
    [
        pytest.param({}, id="neither"),
        pytest.param({"with_eval": True, "with_span": True}, id="both"),
        pytest.param({"with_eval": True, "indices": False}, id="eval-without-indices"),
        pytest.param({"with_span": True, "indices": True}, id="span-with-indices"),
    ],
)
def test_the_database_refuses_a_reference_without_exactly_one_owner(an_eval, owner):
    span = ingest_span(**{"input.image": data_url(payload(2048))})
    fields = {
        "eval": an_eval if owner.get("with_eval") else None,
        "span": span if owner.get("with_span") else None,
    }
    if owner.get("indices", owner.get("with_eval")):
        fields |= {"test_idx": 0, "prompt_idx": 0}

    with pytest.raises(IntegrityError), transaction.atomic():
        BlobReference.objects.create(
            blob=Blob.objects.get(), location="elsewhere", kind="image", **fields
        )


def test_the_database_refuses_a_second_identical_span_reference():
    span = ingest_span(**{"input.image": data_url(payload(2048))})
    reference = BlobReference.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        BlobReference.objects.create(
            blob_id=reference.blob_id, span=span, location=reference.location, kind="image"
        )


def test_a_reference_names_its_owner(an_eval):
    [eval_sha] = ingest_results(an_eval.id, payload(2048, seed=4))
    span = ingest_span(**{"input.image": data_url(payload(2048, seed=5))})

    names = sorted(str(reference) for reference in BlobReference.objects.all())

    span_sha = span.blob_references.get().blob_id
    assert names == sorted(
        [
            f"{an_eval.id}#0/0 response.output → {eval_sha[:12]}",
            f"span {span.pk} attributes.input.image → {span_sha[:12]}",
        ]
    )


def test_the_admin_lists_eval_and_span_references_in_constant_queries(
    client, staff_user, make_eval, django_assert_max_num_queries
):
    for n in range(3):
        ingest_results(make_eval(f"eval-{n}").id, payload(2048, seed=n))
        ingest_span(f"{n + 1:016x}", **{"input.image": data_url(payload(2048, seed=10 + n))})
    client.force_login(staff_user)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("admin:blobs_blobreference_changelist"))

    assert response.status_code == HTTPStatus.OK
    assert len(response.context["cl"].result_list) == 6
    html = response.content.decode()
    assert "eval-2" in html and f"{3:016x} s" in html
