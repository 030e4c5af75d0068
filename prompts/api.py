"""The prompts API, mounted at /api/prompts/. Handlers parse, call a service, return."""

from __future__ import annotations

from http import HTTPStatus
from typing import Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router
from ninja.responses import Status

from alchemy_site.api import MAX_LIMIT
from prompts import learning, lifecycle, selectors, services
from prompts.models import LearningPattern, PatternType
from prompts.schemas import (
    BatchIn,
    FeedbackIn,
    FeedbackOut,
    LineageOut,
    ListQuery,
    MetadataIn,
    MetadataOut,
    MetricIn,
    MetricOut,
    PatternOut,
    PromptDetail,
    PromptIn,
    PromptOut,
    PromptPage,
    PromptPatch,
    SearchIn,
    SearchOut,
)
from prompts.search import search

router = Router(tags=["prompts"])


def _create_kwargs(data: PromptIn) -> dict:
    values = data.dict(exclude={"embedding"})
    if data.embedding is not None:
        values["vector"] = services.Vector(**data.embedding.dict())
    return values


def _who(request: HttpRequest) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


@router.get("/", response=PromptPage, summary="List prompts (filters, sort, cursor pages)")
def list_prompts(request: HttpRequest, params: Query[ListQuery]):
    filters = params.dict(exclude={"sort", "limit", "cursor"})
    items, next_cursor = selectors.list_prompts(
        filters=filters, sort=params.sort, limit=params.limit, cursor=params.cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.post("/", response={HTTPStatus.CREATED: PromptOut}, summary="Create a prompt")
def create_prompt(request: HttpRequest, data: PromptIn):
    return Status(HTTPStatus.CREATED, services.create_prompt(**_create_kwargs(data)))


@router.post(
    "/batch", response={HTTPStatus.CREATED: list[PromptOut]}, summary="Create prompts, all or none"
)
def create_prompts(request: HttpRequest, data: BatchIn):
    created = services.create_prompts(items=[_create_kwargs(item) for item in data.items])
    return Status(HTTPStatus.CREATED, created)


@router.post("/search", response=SearchOut, summary="Text, semantic or hybrid search")
def search_prompts(request: HttpRequest, data: SearchIn):
    hits = search(
        query=data.query,
        mode=data.mode,
        limit=data.limit,
        filters=data.filters.dict(),
        vector=data.vector,
        embedding_model=data.embedding_model,
        rank=data.rank,
    )
    results = [{"score": h.score, "match": h.match, "prompt": h.prompt} for h in hits]
    return {"mode": data.mode, "count": len(results), "results": results}


@router.get(
    "/patterns", response=list[PatternOut], summary="Learning patterns, most confident first"
)
def list_patterns(
    request: HttpRequest,
    pattern_type: Literal[tuple(PatternType.values)] | None = None,  # type: ignore[valid-type]
    min_confidence: float = 0.0,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
):
    patterns = LearningPattern.objects.filter(confidence_score__gte=min_confidence)
    if pattern_type:
        patterns = patterns.filter(pattern_type=pattern_type)
    return patterns.order_by("-confidence_score", "pattern_type", "pattern_key")[:limit]


@router.get("/{uuid:prompt_id}", response=PromptDetail, summary="A prompt with its related rows")
def get_prompt(request: HttpRequest, prompt_id: UUID):
    return selectors.prompt_detail(prompt_id)


@router.patch("/{uuid:prompt_id}", response=PromptOut, summary="Change a prompt")
def update_prompt(request: HttpRequest, prompt_id: UUID, data: PromptPatch):
    values = data.dict(exclude_unset=True, exclude={"embedding", "reason"})
    if data.embedding is not None:
        values["vector"] = services.Vector(**data.embedding.dict())
    return services.update_prompt(
        prompt=services.get_prompt(prompt_id),
        reason=data.reason,
        updated_by=_who(request),
        **values,
    )


@router.delete(
    "/{uuid:prompt_id}", response={HTTPStatus.NO_CONTENT: None}, summary="Delete a prompt"
)
def delete_prompt(
    request: HttpRequest,
    prompt_id: UUID,
    children: Literal["refuse", "reparent", "cascade"] = "refuse",
):
    services.delete_prompt(prompt=services.get_prompt(prompt_id), children=children)
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post(
    "/{uuid:prompt_id}/feedback",
    response={HTTPStatus.CREATED: FeedbackOut},
    summary="Rate a prompt 1–5",
)
def add_feedback(request: HttpRequest, prompt_id: UUID, data: FeedbackIn):
    prompt = services.get_prompt(prompt_id)
    return Status(HTTPStatus.CREATED, learning.record_feedback(prompt=prompt, **data.dict()))


@router.post("/{uuid:prompt_id}/use", response=PromptOut, summary="Record a use of a prompt")
def use_prompt(request: HttpRequest, prompt_id: UUID):
    return lifecycle.record_use(prompt=services.get_prompt(prompt_id))


@router.get("/{uuid:prompt_id}/lineage", response=LineageOut, summary="Ancestors and descendants")
def get_lineage(request: HttpRequest, prompt_id: UUID):
    return selectors.lineage(prompt_id)


@router.get("/{uuid:prompt_id}/metadata", response=list[MetadataOut], summary="Generation metadata")
def list_metadata(request: HttpRequest, prompt_id: UUID):
    return services.get_prompt(prompt_id).metadata.all()


@router.post(
    "/{uuid:prompt_id}/metadata",
    response={HTTPStatus.CREATED: MetadataOut},
    summary="Record a generation (cost from the price table when omitted)",
)
def add_metadata(request: HttpRequest, prompt_id: UUID, data: MetadataIn):
    prompt = services.get_prompt(prompt_id)
    return Status(HTTPStatus.CREATED, services.add_metadata(prompt=prompt, **data.dict()))


@router.post(
    "/{uuid:prompt_id}/metrics", response={HTTPStatus.CREATED: MetricOut}, summary="Record a metric"
)
def add_metric(request: HttpRequest, prompt_id: UUID, data: MetricIn):
    prompt = services.get_prompt(prompt_id)
    return Status(HTTPStatus.CREATED, services.add_metric(prompt=prompt, **data.dict()))
