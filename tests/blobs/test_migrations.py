"""Migrations keep the rows they find."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)


def latest_but(app: str, migration: str) -> list[tuple[str, str]]:
    """Every app at its newest migration except `app`, which is at `migration`."""
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    return [(app, migration), *(leaf for leaf in leaves if leaf[0] != app)]


def migrate(targets: list[tuple[str, str]]):
    """Migrate to `targets`; the apps (historical models) as of there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def back_to_latest():
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_span_references_migration_keeps_existing_eval_references():
    old = migrate(latest_but("blobs", "0001_initial"))
    evaluation = old.get_model("evals", "Eval").objects.create(
        id="eval-before", created_at=timezone.now()
    )
    blob = old.get_model("blobs", "Blob").objects.create(
        sha256="a" * 64, size=2048, mime_type="image/png", storage_key="aa/aa/" + "a" * 64
    )
    old.get_model("blobs", "BlobReference").objects.create(
        blob=blob,
        eval=evaluation,
        test_idx=3,
        prompt_idx=1,
        location="response.output",
        kind="image",
    )

    new = migrate(latest_but("blobs", "0002_span_references"))

    reference = new.get_model("blobs", "BlobReference").objects.get()
    assert (reference.eval_id, reference.test_idx, reference.prompt_idx, reference.span_id) == (
        "eval-before",
        3,
        1,
        None,
    )
    assert (reference.blob_id, reference.location, reference.kind) == (
        "a" * 64,
        "response.output",
        "image",
    )
