"""Content-addressed media taken out of eval results, and who uses it.

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


class BlobReference(models.Model):
    # PROTECT: a blob goes only through GC, once nothing refers to it.
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="references")
    eval = models.ForeignKey(
        "evals.Eval", on_delete=models.CASCADE, related_name="blob_references", db_index=False
    )
    test_idx = models.PositiveIntegerField()
    prompt_idx = models.PositiveIntegerField()
    # JSON path inside the result, e.g. "response.audio.data" or "response.images[0].data".
    location = models.CharField(max_length=1024)
    kind = models.CharField(max_length=8, choices=BlobKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["eval", "test_idx"], name="blobref_eval_test")]
        constraints = [
            # Re-sending a batch records each use once.
            models.UniqueConstraint(
                fields=["eval", "test_idx", "prompt_idx", "location", "blob"],
                name="blobref_unique_use",
            )
        ]

    def __str__(self) -> str:
        return f"{self.eval_id}#{self.test_idx}/{self.prompt_idx} {self.location} → {self.blob_id[:12]}"
