"""The prompt registry's schema: Prompt Alchemy's database, as its document promises it.

Rows are written only by the service modules (`prompts.services`, `lifecycle`,
`learning`, `pricing`, `transfer`); nothing here has logic in `save()`.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q


class Phase(models.TextChoices):
    PRIMA_MATERIA = "prima-materia"
    SOLUTIO = "solutio"
    COAGULATIO = "coagulatio"


class Provider(models.TextChoices):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    OPENROUTER = "openrouter"
    OLLAMA = "ollama"
    OTHER = "other"


class Persona(models.TextChoices):
    CODE = "code"
    WRITING = "writing"
    ANALYSIS = "analysis"
    GENERIC = "generic"


class SourceType(models.TextChoices):
    MANUAL = "manual"
    GENERATED = "generated"
    ENHANCED = "enhanced"
    OPTIMIZED = "optimized"
    IMPORTED = "imported"
    API = "api"


def _in(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


def _unit(field: str) -> Q:
    return Q(**{f"{field}__gte": 0}) & Q(**{f"{field}__lte": 1})


def _non_negative(field: str, *, nullable: bool = False) -> Q:
    check = Q(**{f"{field}__gte": 0})
    return check | Q(**{f"{field}__isnull": True}) if nullable else check


class Tag(models.Model):
    """A normalised tag (lower-case, trimmed): "prompts tagged X" is an index lookup."""

    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptQuerySet(models.QuerySet):
    def active(self) -> PromptQuerySet:
        return self.filter(archived_at__isnull=True)

    def tagged(self, name: str) -> PromptQuerySet:
        return self.filter(tags__name=name.strip().lower())

    def with_related(self) -> PromptQuerySet:
        return self.select_related("parent", "variant_of").prefetch_related("tags")

    def newest_first(self) -> PromptQuerySet:
        return self.order_by("-created_at", "-id")


class Prompt(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content = models.TextField()
    # Not unique: two sessions may store the same text; evals join on it.
    content_hash = models.CharField(max_length=64, db_index=True, editable=False)
    phase = models.CharField(max_length=16, choices=Phase.choices)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    model = models.CharField(max_length=200)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.IntegerField(null=True, blank=True)
    actual_tokens = models.IntegerField(null=True, blank=True)
    tags = models.ManyToManyField(Tag, related_name="prompts", blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    variant_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="variants"
    )
    session_id = models.CharField(max_length=100, blank=True, db_index=True)

    # Lifecycle
    source_type = models.CharField(
        max_length=16, choices=SourceType.choices, default=SourceType.MANUAL
    )
    enhancement_method = models.CharField(max_length=100, blank=True)
    relevance_score = models.FloatField(default=0.0)
    usage_count = models.IntegerField(default=0)
    generation_count = models.IntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    # Effectiveness, kept current by learning.record_feedback.
    feedback_count = models.IntegerField(default=0)
    rating_sum = models.IntegerField(default=0)
    mean_rating = models.FloatField(null=True, blank=True)
    effectiveness_score = models.FloatField(default=0.5)

    # Original input tracking
    original_input = models.TextField(blank=True)
    persona = models.CharField(max_length=16, choices=Persona.choices, default=Persona.GENERIC)
    target_model_family = models.CharField(max_length=100, blank=True)
    target_use_case = models.CharField(max_length=200, blank=True)

    # Embedding: float32 little-endian bytes; model + dimensions name its vector space.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_provider = models.CharField(max_length=100, blank=True)
    dimensions = models.IntegerField(null=True, blank=True)

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = PromptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["phase"], name="idx_prompts_phase"),
            models.Index(fields=["provider"], name="idx_prompts_provider"),
            models.Index(fields=["persona"], name="idx_prompts_persona"),
            models.Index(fields=["created_at"], name="idx_prompts_created_at"),
            models.Index(fields=["effectiveness_score"], name="idx_prompts_effectiveness"),
            models.Index(fields=["relevance_score"], name="idx_prompts_relevance"),
            models.Index(fields=["model"], name="idx_prompts_model"),
            models.Index(fields=["source_type"], name="idx_prompts_source_type"),
            models.Index(fields=["last_used_at"], name="idx_prompts_last_used"),
            models.Index(fields=["embedding_model", "dimensions"], name="idx_prompts_embedding"),
        ]
        constraints = [
            models.CheckConstraint(condition=_in("phase", Phase), name="prompt_phase_valid"),
            models.CheckConstraint(
                condition=_in("provider", Provider), name="prompt_provider_valid"
            ),
            models.CheckConstraint(condition=_in("persona", Persona), name="prompt_persona_valid"),
            models.CheckConstraint(condition=_unit("relevance_score"), name="prompt_relevance_0_1"),
            models.CheckConstraint(
                condition=_unit("effectiveness_score"), name="prompt_effectiveness_0_1"
            ),
            models.CheckConstraint(
                condition=Q(mean_rating__isnull=True)
                | (Q(mean_rating__gte=1) & Q(mean_rating__lte=5)),
                name="prompt_mean_rating_1_5",
            ),
            models.CheckConstraint(
                condition=_non_negative("usage_count")
                & _non_negative("generation_count")
                & _non_negative("feedback_count")
                & _non_negative("rating_sum"),
                name="prompt_counts_non_negative",
            ),
            models.CheckConstraint(
                condition=_non_negative("max_tokens", nullable=True)
                & _non_negative("actual_tokens", nullable=True),
                name="prompt_tokens_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(temperature__isnull=True) | Q(temperature__gte=0),
                name="prompt_temperature_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(embedding__isnull=True) & Q(dimensions__isnull=True))
                | (Q(embedding__isnull=False) & Q(dimensions__gt=0)),
                name="prompt_embedding_has_dimensions",
            ),
            models.CheckConstraint(condition=~Q(parent=F("id")), name="prompt_not_own_parent"),
        ]

    def __str__(self) -> str:
        first_line = self.content.strip().splitlines()[0] if self.content.strip() else ""
        return first_line[:80] or str(self.id)


class ModelMetadata(models.Model):
    """One generation's model, versions, timing, tokens and cost."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="metadata")
    generation_model = models.CharField(max_length=200)
    generation_provider = models.CharField(max_length=100)
    embedding_model = models.CharField(max_length=200, blank=True)
    embedding_provider = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    api_version = models.CharField(max_length=100, blank=True)
    processing_time = models.IntegerField(help_text="Milliseconds.")
    input_tokens = models.IntegerField()
    output_tokens = models.IntegerField()
    total_tokens = models.IntegerField()
    cost = models.FloatField(null=True, blank=True, help_text="USD.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "model metadata"
        indexes = [
            models.Index(fields=["prompt", "created_at"], name="idx_model_metadata_prompt_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_non_negative("processing_time")
                & _non_negative("input_tokens")
                & _non_negative("output_tokens"),
                name="metadata_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(total_tokens=F("input_tokens") + F("output_tokens")),
                name="metadata_total_is_input_plus_output",
            ),
            models.CheckConstraint(
                condition=_non_negative("cost", nullable=True), name="metadata_cost_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.generation_provider}/{self.generation_model} ({self.total_tokens} tokens)"


class Metric(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="metrics")
    token_usage = models.IntegerField(null=True, blank=True)
    response_time_ms = models.IntegerField(null=True, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    user_rating = models.IntegerField(null=True, blank=True)
    feedback = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["prompt", "created_at"], name="idx_metrics_prompt_id")]
        constraints = [
            models.CheckConstraint(
                condition=_non_negative("token_usage", nullable=True)
                & _non_negative("response_time_ms", nullable=True),
                name="metric_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(success_rate__isnull=True) | _unit("success_rate"),
                name="metric_success_rate_0_1",
            ),
            models.CheckConstraint(
                condition=Q(user_rating__isnull=True)
                | (Q(user_rating__gte=1) & Q(user_rating__lte=5)),
                name="metric_user_rating_1_5",
            ),
        ]

    def __str__(self) -> str:
        return f"metric {self.pk} of {self.prompt_id}"


class EnhancementHistory(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="history")
    previous_content = models.TextField()
    updated_content = models.TextField()
    update_reason = models.TextField(blank=True)
    updated_by = models.CharField(max_length=150, blank=True)
    enhancement_method = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "enhancement history"
        indexes = [
            models.Index(fields=["prompt", "created_at"], name="idx_enhancement_history_prompt"),
        ]

    def __str__(self) -> str:
        return f"edit {self.pk} of {self.prompt_id}"


class PatternType(models.TextChoices):
    PERSONA = "persona"
    PHASE = "phase"
    PROVIDER = "provider"
    MODEL = "model"
    TAG = "tag"


class LearningPattern(models.Model):
    """What feedback says about prompts sharing one trait (a persona, phase, model, tag…)."""

    pattern_type = models.CharField(max_length=16, choices=PatternType.choices)
    pattern_key = models.CharField(max_length=200)
    pattern_data = models.JSONField(default=dict, blank=True)
    confidence_score = models.FloatField(default=0.0)
    usage_count = models.IntegerField(default=0)
    feedback_count = models.IntegerField(default=0)
    rating_sum = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-confidence_score", "pattern_type", "pattern_key"]
        indexes = [
            models.Index(fields=["pattern_type"], name="idx_learning_patterns_type"),
            models.Index(fields=["confidence_score"], name="idx_learning_patterns_conf"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["pattern_type", "pattern_key"], name="learning_pattern_unique"
            ),
            models.CheckConstraint(
                condition=_unit("confidence_score"), name="learning_pattern_confidence_0_1"
            ),
            models.CheckConstraint(
                condition=_non_negative("usage_count")
                & _non_negative("feedback_count")
                & _non_negative("rating_sum"),
                name="learning_pattern_counts_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pattern_type}={self.pattern_key}"


class UserFeedback(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="feedback")
    rating = models.IntegerField()
    feedback_type = models.CharField(max_length=50, blank=True)
    feedback_text = models.TextField(blank=True)
    session_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "user feedback"
        indexes = [
            models.Index(fields=["prompt", "created_at"], name="idx_user_feedback_prompt_id"),
            models.Index(fields=["rating"], name="idx_user_feedback_rating"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5), name="feedback_rating_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}★ on {self.prompt_id}"


class ModelPrice(models.Model):
    """Price per million tokens from `effective_from` on; the newest applicable row wins."""

    provider = models.CharField(max_length=100)
    model = models.CharField(
        max_length=200, help_text="Exact name or a prefix: 'gpt-4o' prices 'gpt-4o-2024-08-06'."
    )
    input_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    effective_from = models.DateField()
    notes = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["provider", "model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"], name="model_price_version_unique"
            ),
            models.CheckConstraint(
                condition=_non_negative("input_per_million") & _non_negative("output_per_million"),
                name="model_price_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from}"


class EmbeddingSpace(models.Model):
    """One embedding model's vector space: its fixed dimensions and a change counter.

    The counter is bumped in the same transaction as any embedding write, so every
    process can tell with one indexed read whether its in-memory matrix is stale.
    """

    model = models.CharField(max_length=200, unique=True)
    dimensions = models.IntegerField()
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(dimensions__gt=0), name="embedding_space_dims"),
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.dimensions}d)"
