from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from blobs.models import Blob, BlobReference
from blobs.services import blob_url

SPAN_JSON_FIELDS = ("attributes", "resource_attributes", "events", "links")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows come from the ingest path and leave through GC, never through forms."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class DeletesBlobReferences:
    """For the admin of a model whose rows own blob references (spans, traces, evals).

    Deleting such a row deletes its references with it; the admin would refuse that,
    since no one may delete references on their own here. The bytes stay for GC.
    """

    def get_deleted_objects(self, objs, request: HttpRequest):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(BlobReference._meta.verbose_name)
        return deleted, counts, perms_needed, protected


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin):
    list_display = ["sha256", "mime_type", "size", "reference_count", "created_at", "open_link"]
    list_filter = ["mime_type"]
    search_fields = ["=sha256"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Blob]:
        return super().get_queryset(request).annotate(reference_count=Count("references"))

    @admin.display(description="references", ordering="reference_count")
    def reference_count(self, obj: Blob) -> int:
        return obj.reference_count

    @admin.display(description="")
    def open_link(self, obj: Blob) -> str:
        return format_html('<a href="{}">open</a>', blob_url(obj.sha256))


@admin.register(BlobReference)
class BlobReferenceAdmin(ReadOnlyAdmin):
    list_display = ["eval", "test_idx", "prompt_idx", "span", "location", "kind", "blob"]
    list_filter = ["kind"]
    list_select_related = ["blob", "eval", "span"]
    search_fields = ["=eval__id", "=span__span_id", "=blob__sha256"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[BlobReference]:
        # A span's JSON is most of its row; its name and id are all a list shows.
        return super().get_queryset(request).defer(*(f"span__{name}" for name in SPAN_JSON_FIELDS))
