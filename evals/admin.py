"""Admin for the eval store: read-mostly, and fast on evals with a million results.

Counts come from the aggregate rows; the results inline shows one page at a time
(`?results_page=N`), never the whole result set.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from evals.models import (
    Dataset,
    Eval,
    EvalPrompt,
    EvalPromptStats,
    EvalResult,
    EvalTag,
    PromptText,
    Tag,
)
from evals.services import delete_eval, effective_status

RESULTS_PER_PAGE = 50


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(str(t.pk), str(t)) for t in Tag.objects.order_by("name", "value")[:200]]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                pk__in=EvalTag.objects.filter(tag_id=self.value()).values("eval_id")
            )
        return queryset


class EvalPromptInline(admin.TabularInline):
    model = EvalPrompt
    fields = ("prompt_idx", "label", "provider", "prompt_text")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class EvalPromptStatsInline(admin.TabularInline):
    model = EvalPromptStats
    fields = (
        "prompt_idx", "result_count", "pass_count", "fail_count", "error_count", "score_sum",
        "assert_pass_count", "assert_fail_count", "token_total", "latency_sum_ms", "cost_sum",
    )  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "per-prompt aggregates"

    def has_add_permission(self, request, obj=None):
        return False


class PagedFormSet(BaseInlineFormSet):
    page = 1

    def get_queryset(self):
        if not hasattr(self, "_paged"):
            start = (self.page - 1) * RESULTS_PER_PAGE
            self._paged = (
                super()
                .get_queryset()
                .order_by("test_idx", "prompt_idx")[start : start + RESULTS_PER_PAGE]
            )
        return self._paged


class EvalResultInline(admin.TabularInline):
    model = EvalResult
    formset = PagedFormSet
    fields = (
        "test_idx", "prompt_idx", "success", "score", "failure_reason", "latency_ms", "cost",
        "output_preview",
    )  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = f"results (a page of {RESULTS_PER_PAGE}; ?results_page=N for more)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        try:
            page = max(int(request.GET.get("results_page", 1)), 1)
        except ValueError:
            page = 1
        return type("PagedResults", (formset,), {"page": page})

    @admin.display(description="output")
    def output_preview(self, obj: EvalResult) -> str:
        output = (obj.response or {}).get("output") if isinstance(obj.response, dict) else None
        text = output if isinstance(output, str) else ("" if output is None else str(output))
        return text[:200] or obj.error[:200]


@admin.register(Eval)
class EvalAdmin(admin.ModelAdmin):
    list_display = (
        "id", "created_at", "author", "shown_status", "test_count", "result_count", "description",
    )  # fmt: skip
    list_filter = ("status", "is_redteam", TagFilter, "author")
    search_fields = ("id", "description", "author")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = (
        "id", "created_at", "updated_at", "last_written_at", "test_count", "vars", "config",
        "duration_ms", "version", "legacy_results", "status", "is_redteam", "results_pages",
    )  # fmt: skip
    fields = ("description", "author", *readonly_fields)
    inlines = (EvalPromptInline, EvalPromptStatsInline, EvalResultInline)

    def get_queryset(self, request):
        totals = (
            EvalPromptStats.objects.filter(eval_id=OuterRef("pk"))
            .order_by()
            .values("eval_id")
            .annotate(n=Sum("result_count"))
            .values("n")
        )
        return super().get_queryset(request).annotate(result_total=Coalesce(Subquery(totals), 0))

    @admin.display(description="results", ordering="result_total")
    def result_count(self, obj: Eval) -> int:
        return obj.result_total

    @admin.display(description="status")
    def shown_status(self, obj: Eval) -> str:
        return effective_status(obj)

    @admin.display(description="result pages")
    def results_pages(self, obj: Eval) -> str:
        pages = max((obj.result_total + RESULTS_PER_PAGE - 1) // RESULTS_PER_PAGE, 1)
        return format_html(
            "{} pages of {} — <a href='?results_page=2'>next page</a>", pages, RESULTS_PER_PAGE
        )

    def has_add_permission(self, request):
        return False  # evals are written by the evaluator, the API and the importers

    def get_deleted_objects(self, objs, request):
        """Counts from the aggregate rows instead of Django's list of every related row.

        The stock confirmation page loads each result (a million for a big eval) and refuses
        because nobody may delete blob references on their own; deleting an eval takes its
        results, aggregates, junction rows and blob references with it (the bytes stay for
        blob GC, traces stay unlinked).
        """
        evals = list(objs)
        results = EvalPromptStats.objects.filter(eval__in=evals).aggregate(n=Sum("result_count"))
        counts = {
            Eval._meta.verbose_name_plural: len(evals),
            EvalResult._meta.verbose_name_plural: results["n"] or 0,
        }
        return [str(e) for e in evals], counts, set(), []

    def delete_model(self, request, obj: Eval) -> None:
        delete_eval(eval=obj)  # the one delete path: FTS index, blob references, signal

    def delete_queryset(self, request, queryset) -> None:
        for eval_ in queryset:
            delete_eval(eval=eval_)


@admin.register(PromptText)
class PromptTextAdmin(admin.ModelAdmin):
    list_display = ("id", "content_hash", "created_at", "__str__")
    search_fields = ("id", "content_hash", "text")
    readonly_fields = ("id", "content_hash", "text", "created_at")


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at")
    readonly_fields = ("id", "tests", "created_at")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "value")
    search_fields = ("name", "value")
