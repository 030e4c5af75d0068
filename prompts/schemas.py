"""Request and response shapes of the prompts API."""

from __future__ import annotations

import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Schema

from prompts.models import Persona, Phase, Provider, SourceType

PhaseName = Literal[tuple(Phase.values)]  # type: ignore[valid-type]
ProviderName = Literal[tuple(Provider.values)]  # type: ignore[valid-type]
PersonaName = Literal[tuple(Persona.values)]  # type: ignore[valid-type]
SourceName = Literal[tuple(SourceType.values)]  # type: ignore[valid-type]

# Django's IntegerField is 32-bit on PostgreSQL: larger counts are a 422, not a 500.
MAX_DB_INT = 2**31 - 1


class VectorIn(Schema):
    values: list[float] = Field(..., min_length=1, max_length=8192)
    model: str = Field(..., min_length=1, max_length=200, description="Embedding model name.")
    provider: str = Field("", max_length=100)


class PromptFields(Schema):
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0, le=MAX_DB_INT)
    actual_tokens: int | None = Field(None, ge=0, le=MAX_DB_INT)
    session_id: str = Field("", max_length=100)
    source_type: SourceName = "api"
    enhancement_method: str = Field("", max_length=100)
    original_input: str = ""
    persona: PersonaName = "generic"
    target_model_family: str = Field("", max_length=100)
    target_use_case: str = Field("", max_length=200)


class PromptIn(PromptFields):
    content: str = Field(..., min_length=1)
    phase: PhaseName
    provider: ProviderName
    model: str = Field(..., min_length=1, max_length=200)
    tags: list[str] = []
    parent_id: UUID | None = None
    variant_of_id: UUID | None = None
    embedding: VectorIn | None = Field(
        None, description="Your own vector; omitted, Alchemy embeds the content offline."
    )


class PromptPatch(Schema):
    content: str | None = Field(None, min_length=1)
    reason: str = Field("", description="Why the content changed (kept in the history).")
    phase: PhaseName | None = None
    provider: ProviderName | None = None
    model: str | None = Field(None, min_length=1, max_length=200)
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0, le=MAX_DB_INT)
    actual_tokens: int | None = Field(None, ge=0, le=MAX_DB_INT)
    session_id: str | None = None
    source_type: SourceName | None = None
    enhancement_method: str | None = None
    original_input: str | None = None
    persona: PersonaName | None = None
    target_model_family: str | None = None
    target_use_case: str | None = None
    tags: list[str] | None = None
    parent_id: UUID | None = None
    variant_of_id: UUID | None = None
    embedding: VectorIn | None = None


class BatchIn(Schema):
    items: list[PromptIn] = Field(..., min_length=1, max_length=1000)


class PromptOut(Schema):
    id: UUID
    content: str
    content_hash: str
    phase: str
    provider: str
    model: str
    temperature: float | None
    max_tokens: int | None
    actual_tokens: int | None
    tags: list[str]
    parent_id: UUID | None
    variant_of_id: UUID | None
    session_id: str
    source_type: str
    enhancement_method: str
    relevance_score: float
    usage_count: int
    generation_count: int
    last_used_at: datetime.datetime | None
    archived_at: datetime.datetime | None
    feedback_count: int
    mean_rating: float | None
    effectiveness_score: float
    original_input: str
    persona: str
    target_model_family: str
    target_use_case: str
    embedding_model: str
    embedding_provider: str
    dimensions: int | None
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @staticmethod
    def resolve_tags(obj) -> list[str]:
        names = getattr(obj, "tag_names", None)  # set by search.with_tag_names
        return names if names is not None else [t.name for t in obj.tags.all()]


class PromptPage(Schema):
    items: list[PromptOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class MetadataIn(Schema):
    generation_model: str = Field(..., min_length=1)
    generation_provider: str = Field(..., min_length=1)
    embedding_model: str = ""
    embedding_provider: str = ""
    model_version: str = ""
    api_version: str = ""
    processing_time: int = Field(..., ge=0, le=MAX_DB_INT, description="Milliseconds.")
    input_tokens: int = Field(..., ge=0, le=MAX_DB_INT)
    output_tokens: int = Field(..., ge=0, le=MAX_DB_INT)
    total_tokens: int | None = Field(
        None, ge=0, le=MAX_DB_INT, description="Defaults to input + output."
    )
    cost: float | None = Field(
        None, ge=0, le=MAX_DB_INT, description="USD; omitted, the price table is used."
    )


class MetadataOut(Schema):
    id: UUID
    generation_model: str
    generation_provider: str
    embedding_model: str
    embedding_provider: str
    model_version: str
    api_version: str
    processing_time: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float | None
    created_at: datetime.datetime


class MetricIn(Schema):
    token_usage: int | None = Field(None, ge=0, le=MAX_DB_INT)
    response_time_ms: int | None = Field(None, ge=0, le=MAX_DB_INT)
    success_rate: float | None = Field(None, ge=0, le=1)
    user_rating: int | None = Field(None, ge=1, le=5)
    feedback: str = ""


class MetricOut(MetricIn):
    id: int
    created_at: datetime.datetime


class HistoryOut(Schema):
    id: int
    previous_content: str
    updated_content: str
    update_reason: str
    updated_by: str
    enhancement_method: str
    created_at: datetime.datetime


class FeedbackIn(Schema):
    rating: int = Field(..., ge=1, le=5)
    feedback_type: str = Field("", max_length=50)
    feedback_text: str = ""
    session_id: str = Field("", max_length=100)


class FeedbackOut(FeedbackIn):
    id: int
    prompt_id: UUID
    created_at: datetime.datetime


class FeedbackCounts(Schema):
    total: int
    mean_rating: float | None
    by_rating: dict[int, int]


class PromptDetail(PromptOut):
    metadata: list[MetadataOut]
    metrics: list[MetricOut]
    history: list[HistoryOut]
    feedback: FeedbackCounts

    @staticmethod
    def resolve_metadata(obj) -> list:
        return list(obj.metadata.all())

    @staticmethod
    def resolve_metrics(obj) -> list:
        return list(obj.metrics.all())

    @staticmethod
    def resolve_history(obj) -> list:
        return list(obj.history.all())

    @staticmethod
    def resolve_feedback(obj) -> dict:
        return obj.feedback_counts


class LineageNode(Schema):
    id: UUID
    content: str
    phase: str
    created_at: datetime.datetime
    children: list[LineageNode] = []


class LineageOut(Schema):
    prompt_id: UUID
    ancestors: list[LineageNode] = Field(..., description="Root first, parent last.")
    descendants: list[LineageNode] = Field(..., description="Children, each with its subtree.")


class SearchFilters(Schema):
    phase: PhaseName | None = None
    provider: ProviderName | None = None
    model: str | None = None
    persona: PersonaName | None = None
    source_type: SourceName | None = None
    tag: str | None = None
    session_id: str | None = None
    created_after: datetime.datetime | None = None
    created_before: datetime.datetime | None = None
    min_relevance: float | None = Field(None, ge=0, le=1)
    archived: bool | None = None


class SearchIn(Schema):
    query: str = ""
    mode: Literal["text", "semantic", "hybrid"] = "text"
    limit: int = Field(20, ge=1, le=500)
    filters: SearchFilters = SearchFilters()
    vector: list[float] | None = Field(
        None, description="Search with your own query vector (needs embedding_model)."
    )
    embedding_model: str | None = Field(
        None, description="Which vector space to search; default: Alchemy's offline embedder."
    )
    rank: Literal["default", "learned"] = "default"


class SearchHit(Schema):
    score: float
    match: str
    prompt: PromptOut


class SearchOut(Schema):
    mode: str
    count: int
    results: list[SearchHit]


class PatternOut(Schema):
    id: int
    pattern_type: str
    pattern_key: str
    pattern_data: dict
    confidence_score: float
    usage_count: int
    feedback_count: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ListQuery(SearchFilters):
    q: str | None = Field(None, description="Text filter over content, input and tags.")
    sort: Literal["recent", "oldest", "relevance", "usage", "rating", "last_used"] = "recent"
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = None
