"""The everyday UI for prompts and feedback. Every write goes through the services."""

from __future__ import annotations

import io

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from prompts import learning, lifecycle, services, transfer
from prompts.models import (
    EnhancementHistory,
    LearningPattern,
    Metric,
    ModelMetadata,
    ModelPrice,
    Prompt,
    UserFeedback,
)


class ReadOnlyInline(admin.TabularInline):
    """Related rows are shown here; they are written by services (API, pages)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MetadataInline(ReadOnlyInline):
    model = ModelMetadata
    fields = (
        "created_at",
        "generation_provider",
        "generation_model",
        "processing_time",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cost",
    )


class MetricInline(ReadOnlyInline):
    model = Metric
    fields = ("created_at", "token_usage", "response_time_ms", "success_rate", "user_rating")


class HistoryInline(ReadOnlyInline):
    model = EnhancementHistory
    fields = ("created_at", "updated_by", "update_reason", "previous_content", "updated_content")


class FeedbackInline(ReadOnlyInline):
    model = UserFeedback
    fields = ("created_at", "rating", "feedback_type", "feedback_text", "session_id")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = (
        "short_content",
        "phase",
        "provider",
        "model",
        "persona",
        "relevance_score",
        "usage_count",
        "mean_rating",
        "feedback_count",
        "created_at",
    )
    list_filter = (
        "phase",
        "provider",
        "persona",
        "source_type",
        ("tags", admin.RelatedOnlyFieldListFilter),
        "created_at",
        ("archived_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("content", "original_input", "tags__name", "content_hash", "=session_id")
    sortable_by = (
        "phase",
        "provider",
        "model",
        "persona",
        "relevance_score",
        "usage_count",
        "mean_rating",
        "feedback_count",
        "created_at",
    )
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    list_select_related = ()
    raw_id_fields = ("parent", "variant_of")
    filter_horizontal = ("tags",)
    readonly_fields = (
        "id",
        "content_hash",
        "relevance_score",
        "effectiveness_score",
        "mean_rating",
        "feedback_count",
        "usage_count",
        "generation_count",
        "last_used_at",
        "archived_at",
        "embedding_model",
        "embedding_provider",
        "dimensions",
        "total_tokens",
        "total_cost",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "content", "content_hash", "original_input", "tags")}),
        (
            "Generation",
            {
                "fields": (
                    "phase",
                    "provider",
                    "model",
                    "temperature",
                    "max_tokens",
                    "actual_tokens",
                    "persona",
                    "target_model_family",
                    "target_use_case",
                    "session_id",
                    "source_type",
                    "enhancement_method",
                )
            },
        ),
        ("Lineage", {"fields": ("parent", "variant_of", "generation_count")}),
        (
            "Lifecycle",
            {
                "fields": (
                    "relevance_score",
                    "effectiveness_score",
                    "mean_rating",
                    "feedback_count",
                    "usage_count",
                    "last_used_at",
                    "archived_at",
                    "total_tokens",
                    "total_cost",
                )
            },
        ),
        ("Embedding", {"fields": ("embedding_model", "embedding_provider", "dimensions")}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )
    inlines = (MetadataInline, MetricInline, HistoryInline, FeedbackInline)
    actions = ("reembed_selected", "recompute_relevance", "export_json")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("tags")

    @admin.display(description="content")
    def short_content(self, obj: Prompt) -> str:
        text = " ".join(obj.content.split())
        return text[:80] + ("…" if len(text) > 80 else "")

    @admin.display(description="tokens (all generations)")
    def total_tokens(self, obj: Prompt) -> int:
        return sum(m.total_tokens for m in obj.metadata.all())

    @admin.display(description="cost USD (all generations)")
    def total_cost(self, obj: Prompt) -> str:
        costs = [m.cost for m in obj.metadata.all() if m.cost is not None]
        return f"{sum(costs):.6f}" if costs else "-"

    def save_model(self, request: HttpRequest, obj: Prompt, form, change: bool) -> None:
        values = {
            f: form.cleaned_data[f] for f in services.EDITABLE_FIELDS if f in form.cleaned_data
        }
        parent = form.cleaned_data.get("parent")
        variant_of = form.cleaned_data.get("variant_of")
        if change:
            saved = services.update_prompt(
                prompt=obj,
                content=form.cleaned_data["content"],
                reason="edited in admin",
                updated_by=request.user.get_username(),
                parent_id=parent.pk if parent else None,
                variant_of_id=variant_of.pk if variant_of else None,
                **values,
            )
        else:
            saved = services.create_prompt(
                content=form.cleaned_data["content"],
                parent_id=parent.pk if parent else None,
                variant_of_id=variant_of.pk if variant_of else None,
                **values,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change) -> None:
        # Tags are normalised by the service rather than saved as the form posted them.
        names = [t.name for t in form.cleaned_data.get("tags", [])]
        services.set_tags(form.instance, services.normalise_tags(names))
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: Prompt) -> None:
        services.delete_prompt(prompt=obj, children="reparent")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for prompt in queryset.order_by("-created_at"):
            if Prompt.objects.filter(pk=prompt.pk).exists():
                services.delete_prompt(prompt=prompt, children="reparent")

    @admin.action(description="Re-embed selected prompts (default embedder)")
    def reembed_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(services.reembed(prompts=queryset.order_by("pk")))
        self.message_user(request, f"Re-embedded {done} prompt(s).", messages.SUCCESS)

    @admin.action(description="Recompute relevance now")
    def recompute_relevance(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = sum(lifecycle.decay(prompt_ids=list(queryset.values_list("pk", flat=True))))
        self.message_user(request, f"Recomputed relevance of {done} prompt(s).", messages.SUCCESS)

    @admin.action(description="Export selected as JSON")
    def export_json(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        out = io.StringIO()
        transfer.export(out=out, fmt="json", prompt_ids=list(queryset.values_list("pk", flat=True)))
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = HttpResponse(out.getvalue(), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="prompts-{stamp}.json"'
        return response


class RatingFilter(admin.SimpleListFilter):
    title = "rating"
    parameter_name = "rating"

    def lookups(self, request, model_admin):
        return [(str(n), "★" * n) for n in range(5, 0, -1)]

    def queryset(self, request, queryset):
        return queryset.filter(rating=int(self.value())) if self.value() else queryset


@admin.register(UserFeedback)
class UserFeedbackAdmin(admin.ModelAdmin):
    list_display = ("prompt", "rating", "feedback_type", "short_text", "session_id", "created_at")
    list_filter = (RatingFilter, "feedback_type", "created_at")
    search_fields = ("feedback_text", "prompt__content", "=session_id")
    list_select_related = ("prompt",)
    raw_id_fields = ("prompt",)
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"

    @admin.display(description="text")
    def short_text(self, obj: UserFeedback) -> str:
        return obj.feedback_text[:80]

    def has_change_permission(self, request, obj=None) -> bool:
        # A rating already folded into the scores can't be edited, only added.
        return False

    def save_model(self, request, obj: UserFeedback, form, change: bool) -> None:
        saved = learning.record_feedback(
            prompt=obj.prompt,
            rating=obj.rating,
            feedback_type=obj.feedback_type,
            feedback_text=obj.feedback_text,
            session_id=obj.session_id,
        )
        obj.pk = saved.pk
        obj.created_at = saved.created_at


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = (
        "provider",
        "model",
        "input_per_million",
        "output_per_million",
        "effective_from",
        "notes",
    )
    list_filter = ("provider",)
    search_fields = ("model", "notes")
    ordering = ("provider", "model", "-effective_from")


@admin.register(LearningPattern)
class LearningPatternAdmin(admin.ModelAdmin):
    list_display = (
        "pattern_type",
        "pattern_key",
        "confidence_score",
        "feedback_count",
        "usage_count",
        "updated_at",
    )
    list_filter = ("pattern_type",)
    search_fields = ("pattern_key",)
    ordering = ("-confidence_score",)
    readonly_fields = (
        "pattern_type",
        "pattern_key",
        "pattern_data",
        "confidence_score",
        "usage_count",
        "feedback_count",
        "rating_sum",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ModelMetadata)
class ModelMetadataAdmin(admin.ModelAdmin):
    list_display = (
        "prompt",
        "generation_provider",
        "generation_model",
        "total_tokens",
        "cost",
        "processing_time",
        "created_at",
    )
    list_filter = ("generation_provider", "generation_model")
    list_select_related = ("prompt",)
    raw_id_fields = ("prompt",)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False
