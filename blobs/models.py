"""Content-addressed media taken out of eval results and spans, and who uses it.

Rows are written only by `blobs.services`; a Blob row is created after its file
is stored, so no row ever points at bytes that were never written.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BlobKind(models.TextChoices):
    IMAGE = "image"
    AUDIO = "audio"
    OTHER = "other"


class Blob(models.Model):
    sha256 = models.CharField(primary_key=True, max_length=64)
    size = models.BigIntegerField()
    mime_type = models.CharField(max_length=255)
    storage_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gte=0), name="blob_size_gte_0")
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]} {self.mime_type} ({self.size} B)"


def _owner(model: str) -> models.ForeignKey:
    # A reference goes with its owner. No index of its own: an index and a unique
    # constraint of BlobReference lead with each owner (the span's is partial).
    return models.ForeignKey(
        model,
        null=True,
        on_delete=models.CASCADE,
        related_name="blob_references",
        db_index=False,
    )


class BlobReference(models.Model):
    """One use of a blob: by an eval result, or by a span's attributes.

    Exactly one owner is set. An eval's uses go with the eval (CASCADE, or
    `delete_references_for_eval`), a span's with the span (`traces prune`); GC
    frees a blob once no use is left.
    """

    # PROTECT: a blob goes only through GC, once nothing refers to it.
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="references")
    eval = _owner("evals.Eval")
    test_idx = models.PositiveIntegerField(null=True)
    prompt_idx = models.PositiveIntegerField(null=True)
    span = _owner("tracing.Span")
    # JSON path inside the result or span, e.g. "response.audio.data" or
    # "attributes.gen_ai.output.image".
    location = models.CharField(max_length=1024)
    kind = models.CharField(max_length=8, choices=BlobKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["eval", "test_idx"], name="blobref_eval_test")]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(
                        eval__isnull=False,
                        test_idx__isnull=False,
                        prompt_idx__isnull=False,
                        span__isnull=True,
                    )
                    | models.Q(
                        eval__isnull=True,
                        test_idx__isnull=True,
                        prompt_idx__isnull=True,
                        span__isnull=False,
                    )
                ),
                name="blobref_one_owner",
            ),
            # Re-sending a batch records each use once. NULLs are distinct in a unique
            # index, so span uses (eval and indices NULL) never collide here.
            models.UniqueConstraint(
                fields=["eval", "test_idx", "prompt_idx", "location", "blob"],
                name="blobref_unique_use",
            ),
            models.UniqueConstraint(
                fields=["span", "location", "blob"],
                condition=models.Q(span__isnull=False),
                name="blobref_unique_span_use",
            ),
        ]

    def __str__(self) -> str:
        owner = (
            f"span {self.span_id}"
            if self.span_id is not None
            else f"{self.eval_id}#{self.test_idx}/{self.prompt_idx}"
        )
        return f"{owner} {self.location} → {self.blob_id[:12]}"
