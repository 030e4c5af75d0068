"""The eval store's JSON API, mounted at /api/evals/. Handlers parse → service → respond.

Eval ids contain colons (`eval-XYZ-2025-01-13T10:30:45`); Django's default `str` path
converter accepts them (anything but `/`), and create_eval refuses ids with slashes.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status

from alchemy_site.api import MAX_LIMIT, MAX_OFFSET
from alchemy_site.errors import Invalid, NotFound
from evals import exporters, selectors, services
from evals.models import EvalResult
from evals.schemas import (
    AddResultsOut,
    CompareOut,
    CompleteIn,
    EvalDetailOut,
    EvalIn,
    EvalListOut,
    RatingIn,
    ResultOut,
    StatsOut,
    TableOut,
)

router = Router(tags=["evals"])


class ListParams(Schema):
    search: str = ""
    tag: str = ""
    author: str = ""
    status: str = ""
    date: str = ""
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class FilterParams(Schema):
    mode: str = "all"
    search: str = ""
    filters: str = ""


class TableParams(FilterParams):
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    # Keyset cursor: the last test_idx of the previous page (fast at any depth).
    after_test_idx: int | None = Field(None, ge=-1, le=MAX_OFFSET)


@router.get("", response=EvalListOut)
def list_evals(request: HttpRequest, params: Query[ListParams]):
    return selectors.eval_list(**params.dict())


@router.post("", response={HTTPStatus.CREATED: EvalDetailOut})
def create_eval(request: HttpRequest, payload: EvalIn):
    eval_ = services.create_eval(**payload.dict())
    return Status(HTTPStatus.CREATED, selectors.eval_detail(eval_.id))


@router.get("/compare", response=CompareOut)
def compare_evals(request: HttpRequest, ids: str):
    return selectors.compare_evals(eval_ids=[i.strip() for i in ids.split(",")])


@router.get("/{eval_id}", response=EvalDetailOut)
def get_eval(request: HttpRequest, eval_id: str):
    return selectors.eval_detail(eval_id)


@router.delete("/{eval_id}", response={HTTPStatus.NO_CONTENT: None})
def delete_eval(request: HttpRequest, eval_id: str):
    services.delete_eval(eval=selectors.get_eval(eval_id))
    return Status(HTTPStatus.NO_CONTENT, None)


@router.post("/{eval_id}/results", response=AddResultsOut)
def add_results(request: HttpRequest, eval_id: str):
    # Parsed here rather than by a schema: the service validates each result and reports
    # the first bad one by index and field, and a 10k batch skips a second validation pass.
    try:
        payload = json.loads(request.body or b"null")
    except RecursionError:
        raise Invalid("The body is nested too deeply to be a list of results.") from None
    except ValueError:
        raise Invalid("The body must be JSON: a list of results or {results: [...]}.") from None
    if isinstance(payload, dict):
        payload = payload.get("results")
    if not isinstance(payload, list):
        raise Invalid("The body must be a list of results or {results: [...]}.", field="results")
    return services.add_results(eval=selectors.get_eval(eval_id), results=payload)


@router.post("/{eval_id}/complete", response=EvalDetailOut)
def complete_eval(request: HttpRequest, eval_id: str, payload: CompleteIn):
    services.complete_eval(
        eval=selectors.get_eval(eval_id), status=payload.status, duration_ms=payload.duration_ms
    )
    return selectors.eval_detail(eval_id)


@router.get("/{eval_id}/table", response=TableOut)
def table(request: HttpRequest, eval_id: str, params: Query[TableParams]):
    return selectors.table_page(eval=selectors.get_eval(eval_id), **params.dict())


@router.get("/{eval_id}/stats", response=StatsOut)
def stats(request: HttpRequest, eval_id: str, params: Query[FilterParams]):
    return selectors.eval_stats(eval=selectors.get_eval(eval_id), **params.dict())


@router.get("/{eval_id}/results/{int:result_id}", response=ResultOut)
def get_result(request: HttpRequest, eval_id: str, result_id: int):
    found = EvalResult.objects.filter(eval_id=eval_id, pk=result_id).first()
    if found is None:
        raise NotFound(f"Result {result_id} is not part of eval {eval_id!r}.")
    return found


@router.patch("/{eval_id}/results/{int:result_id}/rating", response=ResultOut)
def rate_result(request: HttpRequest, eval_id: str, result_id: int, payload: RatingIn):
    return services.rate_result(
        eval=selectors.get_eval(eval_id),
        result_id=result_id,
        passed=payload.pass_,
        reason=payload.reason,
        author=getattr(request.user, "username", "") or "",
    )


@router.get("/{eval_id}/export")
def export(
    request: HttpRequest,
    eval_id: str,
    format: str = "json",
    include_media: bool = False,  # noqa: A002
):
    selectors.get_eval(eval_id)
    stream = exporters.export_stream(eval_id, format, include_media=include_media)
    response = StreamingHttpResponse(stream, content_type=exporters.CONTENT_TYPES[format])
    filename = eval_id.replace(":", "-")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{format}"'
    return response
