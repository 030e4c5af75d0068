from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from blobs.models import Blob, BlobReference
from tests.tracing.factories import data_url, export_of, make_trace, otlp_span, png_bytes
from tracing.models import Span, Trace
from tracing.services import ingest_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_and_new():
    old = make_trace(name="old", children=2)
    Trace.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    new = make_trace(name="new")
    return old, new


def test_prune_deletes_traces_and_spans_older_than_the_cutoff(old_and_new):
    out = StringIO()

    call_command("traces", "prune", "--older-than", "30d", stdout=out)

    assert list(Trace.objects.values_list("name", flat=True)) == ["new"]
    assert Span.objects.count() == 2
    assert "Deleted 1 trace(s) and 3 span(s)" in out.getvalue()


def test_prune_dry_run_counts_and_deletes_nothing(old_and_new):
    out = StringIO()

    call_command("traces", "prune", "--older-than", "4w", "--dry-run", stdout=out)

    assert Trace.objects.count() == 2
    assert "Would delete 1 trace(s) and 3 span(s)" in out.getvalue()


def test_prune_rejects_an_age_without_a_unit():
    with pytest.raises(CommandError, match="e.g. 30d"):
        call_command("traces", "prune", "--older-than", "30", stdout=StringIO())


def test_prune_deletes_span_blob_references_without_loading_span_attributes(old_and_new):
    old, _ = old_and_new
    attributes = {"out.image": data_url(png_bytes())}
    ingest_request(
        request=export_of(otlp_span(old.trace_id, "f" * 16, "media", attributes=attributes))
    )
    assert BlobReference.objects.get().span.trace_id == old.pk

    with CaptureQueriesContext(connection) as queries:
        call_command("traces", "prune", "--older-than", "30d", stdout=StringIO())

    assert not BlobReference.objects.exists()
    assert Blob.objects.count() == 1  # freed later by `blobs gc`
    span_reads = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and "attributes" in q["sql"]
    ]
    assert span_reads == []
