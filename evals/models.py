"""The eval store's schema: promptfoo's v4 layout, with aggregates kept in step.

Rows are written only by `evals.services` (create_eval, add_results, complete_eval).
"""

from __future__ import annotations

from django.db import models


class EvalStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class FailureReason(models.IntegerChoices):
    NONE = 0, "none"
    ASSERT = 1, "assert"
    ERROR = 2, "error"


class EvalQuerySet(models.QuerySet):
    def recent(self) -> EvalQuerySet:
        return self.order_by("-created_at")


class Eval(models.Model):
    # promptfoo ids look like eval-XYZ-2025-01-13T10:30:45 — colons included.
    id = models.CharField(primary_key=True, max_length=255)
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    author = models.CharField(max_length=255, blank=True, db_index=True)
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=EvalStatus.choices, default=EvalStatus.RUNNING)
    is_redteam = models.BooleanField(default=False)
    vars = models.JSONField(default=list, blank=True)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    # promptfoo v2/v3 kept every result inside the eval row; imports keep that JSON.
    legacy_results = models.JSONField(null=True, blank=True)
    version = models.PositiveSmallIntegerField(default=4)
    # When the writer last stored a batch: a running eval idle too long is interrupted.
    last_written_at = models.DateTimeField(null=True, blank=True)
    # Distinct test indices stored, kept by add_results: the table's total without a scan.
    test_count = models.BigIntegerField(default=0)

    prompts = models.ManyToManyField("PromptText", through="EvalPrompt", related_name="evals")
    datasets = models.ManyToManyField("Dataset", through="EvalDataset", related_name="evals")
    tags = models.ManyToManyField("Tag", through="EvalTag", related_name="evals")

    objects = EvalQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="eval_status_created")]

    def __str__(self) -> str:
        return self.id


class PromptText(models.Model):
    """A prompt's text, stored once however many evals use it."""

    id = models.CharField(primary_key=True, max_length=64)  # sha256 of the text
    text = models.TextField()
    # Same digest the prompt registry stores: joins the two sides.
    content_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.text[:60]


class Dataset(models.Model):
    id = models.CharField(primary_key=True, max_length=64)  # sha256 of the tests JSON
    tests = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.id[:12]


class Tag(models.Model):
    name = models.CharField(max_length=255)
    value = models.CharField(max_length=1024, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "value"], name="tag_name_value")]

    def __str__(self) -> str:
        return f"{self.name}={self.value}" if self.value else self.name


class EvalPrompt(models.Model):
    """An eval's prompt column: which text, shown with which label, run on which provider."""

    eval = models.ForeignKey(Eval, on_delete=models.CASCADE, related_name="eval_prompts")
    prompt_text = models.ForeignKey(
        PromptText, on_delete=models.PROTECT, related_name="eval_prompts"
    )
    prompt_idx = models.PositiveIntegerField()
    label = models.TextField(blank=True)
    provider = models.CharField(max_length=512, blank=True)
    # promptfoo's per-prompt extras (config, function flags) that are not aggregates.
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["prompt_idx"]
        constraints = [
            models.UniqueConstraint(fields=["eval", "prompt_idx"], name="evalprompt_eval_idx")
        ]

    def __str__(self) -> str:
        return f"{self.eval_id}[{self.prompt_idx}] {self.label}"


class EvalDataset(models.Model):
    eval = models.ForeignKey(Eval, on_delete=models.CASCADE, related_name="eval_datasets")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="eval_datasets")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["eval", "dataset"], name="evaldataset_unique")
        ]

    def __str__(self) -> str:
        return f"{self.eval_id} ← {self.dataset_id[:12]}"


class EvalTag(models.Model):
    eval = models.ForeignKey(Eval, on_delete=models.CASCADE, related_name="eval_tags")
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="eval_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["eval", "tag"], name="evaltag_unique")]

    def __str__(self) -> str:
        return f"{self.eval_id} ← {self.tag_id}"


class EvalResult(models.Model):
    eval = models.ForeignKey(Eval, on_delete=models.CASCADE, related_name="results", db_index=False)
    prompt_idx = models.PositiveIntegerField()
    test_idx = models.PositiveIntegerField()
    test_case = models.JSONField(default=dict)
    prompt = models.JSONField(default=dict)
    prompt_text = models.ForeignKey(
        PromptText,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
    )
    provider = models.JSONField(default=dict)
    request = models.JSONField(null=True, blank=True)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    failure_reason = models.PositiveSmallIntegerField(
        choices=FailureReason.choices, default=FailureReason.NONE
    )
    success = models.BooleanField(default=False)
    score = models.FloatField(default=0)
    latency_ms = models.IntegerField(default=0)
    cost = models.FloatField(default=0)
    grading_result = models.JSONField(null=True, blank=True)
    named_scores = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # What a free-text search looks in, lower-cased (evals.prepare.search_text): the output,
    # the values of vars and metadata, the grading reason and the error. Written with the
    # row and indexed by evals.search; nullable only so adding it was instant on big tables
    # (migration 0011 filled it for older rows).
    search_text = models.TextField(null=True, editable=False)  # noqa: DJ001
    # The red-team keys of `metadata` that filters read (pluginId, strategyId, severity),
    # lower-cased as evals.prepare.key_text spells them, written with the row. Plain
    # columns, not indexes on JSON expressions: those parsed the metadata several times
    # per index for every inserted row (a third of an insert's work). Nullable: a result
    # without the key has none (migration 0012 filled them for older rows).
    meta_plugin_id = models.TextField(null=True, editable=False)  # noqa: DJ001
    meta_strategy_id = models.TextField(null=True, editable=False)  # noqa: DJ001
    meta_severity = models.TextField(null=True, editable=False)  # noqa: DJ001
    # Numbers inside the JSON above that stats add up (evals.facts), written with the row.
    # Nullable only so adding them was instant on big tables; migration 0006 filled them
    # for older rows and the write path always sets them.
    assert_pass_count = models.PositiveIntegerField(null=True, editable=False)
    assert_fail_count = models.PositiveIntegerField(null=True, editable=False)
    token_prompt = models.BigIntegerField(null=True, editable=False)
    token_completion = models.BigIntegerField(null=True, editable=False)
    token_total = models.BigIntegerField(null=True, editable=False)
    token_cached = models.BigIntegerField(null=True, editable=False)
    token_num_requests = models.BigIntegerField(null=True, editable=False)
    assert_token_prompt = models.BigIntegerField(null=True, editable=False)
    assert_token_completion = models.BigIntegerField(null=True, editable=False)
    assert_token_total = models.BigIntegerField(null=True, editable=False)
    assert_token_cached = models.BigIntegerField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # (eval, test_idx) lookups, the per-test walks of compare and "different" included,
        # use the unique constraint's index (eval, test_idx, prompt_idx) below.
        indexes = [
            # Filtered pages walk test_idx in order within one filter value, and filtered
            # counts read only the index (failures also test failure_reason in it).
            models.Index(
                fields=["eval", "success", "test_idx", "failure_reason"],
                name="result_eval_success_test",
            ),
            models.Index(
                fields=["eval", "failure_reason", "test_idx"], name="result_eval_failure_test"
            ),
            # Red-team filters walk test_idx in order within one key's value.
            models.Index(fields=["eval", "meta_plugin_id", "test_idx"], name="result_plugin_test"),
            models.Index(
                fields=["eval", "meta_strategy_id", "test_idx"], name="result_strategy_test"
            ),
            models.Index(fields=["eval", "meta_severity", "test_idx"], name="result_severity_test"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["eval", "test_idx", "prompt_idx"], name="result_eval_test_prompt_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.eval_id}#{self.test_idx}/{self.prompt_idx}"


class EvalPromptStats(models.Model):
    """Per-(eval, prompt) running totals, updated in the same transaction as each batch.

    Totals, counts and unfiltered stats read these rows and never scan results.
    """

    eval = models.ForeignKey(Eval, on_delete=models.CASCADE, related_name="prompt_stats")
    prompt_idx = models.PositiveIntegerField()
    result_count = models.BigIntegerField(default=0)
    pass_count = models.BigIntegerField(default=0)
    fail_count = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    score_sum = models.FloatField(default=0)
    assert_pass_count = models.BigIntegerField(default=0)
    assert_fail_count = models.BigIntegerField(default=0)
    # {metric: sum} and {metric: summed weight}; mean = sum / weight.
    named_score_sums = models.JSONField(default=dict, blank=True)
    named_score_weights = models.JSONField(default=dict, blank=True)
    token_prompt = models.BigIntegerField(default=0)
    token_completion = models.BigIntegerField(default=0)
    token_total = models.BigIntegerField(default=0)
    token_cached = models.BigIntegerField(default=0)
    token_num_requests = models.BigIntegerField(default=0)
    # Tokens the graders (llm-rubric & co.) used, promptfoo's tokenUsage.assertions.
    assert_token_prompt = models.BigIntegerField(default=0)
    assert_token_completion = models.BigIntegerField(default=0)
    assert_token_total = models.BigIntegerField(default=0)
    assert_token_cached = models.BigIntegerField(default=0)
    latency_sum_ms = models.BigIntegerField(default=0)
    cost_sum = models.FloatField(default=0)
    # The columns above again for each outcome's results — {"pass"|"fail"|"error": {column:
    # sum, "named_score_sums": …, "named_score_weights": …}} — so the passes, failures and
    # errors views have their stats without reading a result (evals.prepare.OUTCOMES).
    by_outcome = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["prompt_idx"]
        constraints = [
            models.UniqueConstraint(fields=["eval", "prompt_idx"], name="promptstats_eval_idx")
        ]

    def __str__(self) -> str:
        return f"stats {self.eval_id}[{self.prompt_idx}]"


class EvalOutcomes(models.Model):
    """A snapshot of an eval test by test, for comparing evals (evals.outcomes).

    Arrays as little-endian bytes: test indices (int64), whether every prompt passed
    (bool), the mean score (float64). `version` is the eval's version it was taken at.
    """

    eval = models.OneToOneField(Eval, on_delete=models.CASCADE, primary_key=True, related_name="+")
    version = models.CharField(max_length=200)
    tests = models.BinaryField()
    passed = models.BinaryField()
    score = models.BinaryField()

    def __str__(self) -> str:
        return f"outcomes {self.eval_id}"
