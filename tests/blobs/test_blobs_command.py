from __future__ import annotations

import os
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from blobs.models import Blob, BlobReference
from blobs.services import (
    collect_garbage,
    delete_references_for_eval,
)
from tests.blobs.conftest import ingest_results, payload

pytestmark = pytest.mark.django_db


def blob_root():
    return settings.ALCHEMY_HOME / "blobs"


def files():
    return sorted(p.name for p in blob_root().rglob("*") if p.is_file())


def run(*args: str) -> str:
    out = StringIO()
    call_command("blobs", *args, stdout=out)
    return out.getvalue()


def test_gc_after_eval_deletion_frees_only_blobs_no_other_eval_uses(make_eval):
    first, second = make_eval("eval-a"), make_eval("eval-b")
    shared, only_first = payload(2048, seed=1), payload(3072, seed=2)
    ingest_results(first.id, shared, only_first)
    [shared_sha] = ingest_results(second.id, shared)

    delete_references_for_eval(first.id)
    output = run("gc", "--min-age", "0")

    assert list(Blob.objects.values_list("sha256", flat=True)) == [shared_sha]
    assert files() == [shared_sha]
    assert "Deleted 1 unreferenced blobs" in output
    assert "Freed 3.0\xa0KB (3072 bytes)." in output


def test_deleting_an_eval_row_deletes_its_references(make_eval):
    an_eval = make_eval()
    ingest_results(an_eval.id, payload(2048))

    an_eval.delete()

    assert not BlobReference.objects.exists()
    assert Blob.objects.count() == 1


def test_gc_dry_run_reports_without_deleting(make_eval):
    ingest_results(make_eval().id, payload(2048))
    BlobReference.objects.all().delete()

    output = run("gc", "--dry-run", "--min-age", "0")

    assert "Would delete 1 unreferenced blobs" in output
    assert "2048 bytes) would be freed" in output
    assert Blob.objects.count() == 1 and len(files()) == 1


def test_gc_keeps_recent_unreferenced_blobs_an_ingest_may_still_use(make_eval):
    ingest_results(make_eval().id, payload(2048))
    BlobReference.objects.all().delete()

    output = run("gc")

    assert Blob.objects.count() == 1
    assert "Kept 1 recent unreferenced items" in output


def test_a_crash_between_file_write_and_row_insert_leaves_only_an_orphan_file_for_gc(
    make_eval, monkeypatch
):
    an_eval = make_eval()

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(Blob.objects, "bulk_create", crash)
    with pytest.raises(RuntimeError):
        ingest_results(an_eval.id, payload(2048))
    monkeypatch.undo()

    assert not Blob.objects.exists()
    assert len(files()) == 1
    report = collect_garbage(min_age_seconds=0)
    assert (report.orphan_files_deleted, report.orphan_bytes_freed) == (1, 2048)
    assert files() == []


def test_gc_removes_leftover_temp_files_and_ignores_foreign_names(make_eval):
    ingest_results(make_eval().id, payload(2048))
    [stored] = [p for p in blob_root().rglob("*") if p.is_file()]
    (stored.parent / ".tmp-abc123").write_bytes(b"partial")
    (stored.parent / "README").write_text("not ours")

    report = collect_garbage(min_age_seconds=0)

    assert report.temp_files_deleted == 1
    assert report.blobs_deleted == report.orphan_files_deleted == 0
    assert sorted(files()) == sorted([stored.name, "README"])


def test_gc_keeps_files_younger_than_min_age(make_eval):
    ingest_results(make_eval().id, payload(2048))
    BlobReference.objects.all().delete()
    Blob.objects.all().delete()
    [stored] = [p for p in blob_root().rglob("*") if p.is_file()]
    os.utime(stored)

    report = collect_garbage(min_age_seconds=3600)

    assert report.orphan_files_deleted == 0 and report.skipped_recent == 1
    assert stored.exists()


def test_gc_on_an_empty_store_frees_nothing():
    assert "Freed 0\xa0bytes (0 bytes)." in run("gc", "--min-age", "0")


def test_gc_rejects_a_negative_min_age():
    with pytest.raises(CommandError, match="--min-age"):
        run("gc", "--min-age", "-1")


def test_stats_counts_blobs_bytes_and_references(make_eval):
    ingest_results(make_eval("eval-a").id, payload(2048, seed=1), payload(1024, seed=2))
    ingest_results(make_eval("eval-b").id, payload(2048, seed=1))

    output = run("stats")

    assert "Blobs: 2 (3.0\xa0KB, 3072 bytes)" in output
    assert "References: 3" in output
    assert "Unreferenced: 0" in output
    assert "image/png" in output


def test_the_command_requires_an_action():
    with pytest.raises(CommandError):
        run()
