from __future__ import annotations

from django.contrib import admin

from blobs.admin import DeletesBlobReferences
from tracing.models import Span, Trace


class SpanInline(admin.TabularInline):
    model = Span
    fields = (
        "name",
        "span_id",
        "parent_span_id",
        "status_code",
        "start_time_unix_nano",
        "end_time_unix_nano",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Trace)
class TraceAdmin(DeletesBlobReferences, admin.ModelAdmin):
    # Spans are written only by the receiver; the admin is for looking and deleting.
    list_display = (
        "trace_id",
        "name",
        "evaluation_id",
        "test_case_id",
        "span_count",
        "status_code",
        "started_at",
    )
    list_filter = ("status_code",)
    search_fields = ("trace_id", "evaluation_id", "test_case_id", "name")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Trace._meta.fields]
    inlines = [SpanInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Span)
class SpanAdmin(DeletesBlobReferences, admin.ModelAdmin):
    list_display = ("name", "span_id", "trace", "status_code", "started_at")
    list_filter = ("status_code", "kind")
    search_fields = ("span_id", "name", "trace__trace_id")
    list_select_related = ("trace",)
    raw_id_fields = ("trace",)
    readonly_fields = [field.name for field in Span._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
