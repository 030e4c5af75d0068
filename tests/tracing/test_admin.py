from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from blobs.models import Blob, BlobReference
from tests.tracing.factories import data_url, export_of, make_trace, otlp_span, png_bytes
from tracing.models import Span, Trace
from tracing.services import ingest_request

pytestmark = pytest.mark.django_db


def test_the_admin_lists_and_shows_traces_and_spans(client, staff_user):
    client.force_login(staff_user)
    trace = make_trace(name="in-admin")
    span = trace.spans.first()

    pages = [
        reverse("admin:tracing_trace_changelist"),
        reverse("admin:tracing_trace_change", args=[trace.pk]),
        reverse("admin:tracing_span_changelist"),
        reverse("admin:tracing_span_change", args=[span.pk]),
    ]

    for page in pages:
        assert client.get(page).status_code == HTTPStatus.OK, page


def test_the_admin_deletes_a_trace_whose_spans_hold_media_with_their_references(client, staff_user):
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    attributes = {"gen_ai.output.image": data_url(png_bytes())}
    ingest_request(request=export_of(otlp_span(trace_id, span_id, "s", attributes=attributes)))
    trace = Trace.objects.get()
    client.force_login(staff_user)

    response = client.post(reverse("admin:tracing_trace_delete", args=[trace.pk]), {"post": "yes"})

    assert response.status_code == HTTPStatus.FOUND
    assert not Trace.objects.exists() and not Span.objects.exists()
    assert not BlobReference.objects.exists()
    assert Blob.objects.count() == 1  # until GC
