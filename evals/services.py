"""The eval store's write path: the only code that writes evals, results and aggregates.

The API, the importers and the evaluator all call `create_eval`, `add_results` and
`complete_eval`; nothing else inserts rows, so the per-prompt aggregates can never drift.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import string
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from alchemy_site import fastjson
from alchemy_site.errors import Conflict, Invalid, TooLarge
from evals import outcomes, search
from evals.facts import FACT_COLUMNS, result_facts
from evals.models import (
    Dataset,
    Eval,
    EvalDataset,
    EvalOutcomes,
    EvalPrompt,
    EvalPromptStats,
    EvalResult,
    EvalStatus,
    EvalTag,
    FailureReason,
    PromptText,
    Tag,
)
from evals.signal import write_signal

ID_ALPHABET = string.ascii_letters + string.digits
FINAL_STATUSES = {EvalStatus.COMPLETE, EvalStatus.FAILED}


@dataclass(frozen=True)
class AddResultsOutcome:
    stored: int
    skipped: int


def _publish_after_commit(eval_id: str) -> None:
    """Tell servers on other hosts over Redis, once the write commits (a no-op without Redis)."""
    # Imported here: evals.live imports evals.watcher, which imports this module.
    from evals.live import publish_update

    transaction.on_commit(lambda: publish_update(eval_id))


def new_eval_id(created_at: datetime | None = None) -> str:
    """A promptfoo-style id: `eval-XYZ-YYYY-MM-DDTHH:MM:SS` (UTC)."""
    when = (created_at or timezone.now()).astimezone(UTC)
    suffix = "".join(secrets.choice(ID_ALPHABET) for _ in range(3))
    return f"eval-{suffix}-{when.strftime('%Y-%m-%dT%H:%M:%S')}"


def text_sha256(text: str) -> str:
    # Same digest as prompts.hashing.content_hash: sha256 of the UTF-8 text, untouched.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def validate_eval_id(eval_id: str) -> str:
    if not isinstance(eval_id, str) or not eval_id.strip():
        raise Invalid("Eval id must be a non-empty string.", field="id")
    if len(eval_id) > 255:
        raise Invalid("Eval id is longer than 255 characters.", field="id")
    if "/" in eval_id or any(ch.isspace() for ch in eval_id):
        raise Invalid(f"Eval id {eval_id!r} must not contain slashes or whitespace.", field="id")
    return eval_id


def _reject_non_finite(value: Any, where: str) -> None:
    """Raise Invalid naming the first NaN or ±Infinity inside `value`.

    JSON has no spelling for them: SQLite's JSON_VALID check and PostgreSQL's jsonb both
    refuse them at insert time. Walked with a stack, not recursion, so a deeply nested
    value that json.loads accepted can't overflow here.
    """
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise Invalid(f"{path} must be a finite number, got {item!r}.", field=path)
        if isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))


def derive_vars(tests: Iterable[dict] | None) -> list[str]:
    names: dict[str, None] = {}
    for test in tests or ():
        if isinstance(test, dict) and isinstance(test.get("vars"), dict):
            names.update(dict.fromkeys(test["vars"]))
    return list(names)


def create_eval(
    *,
    config: dict,
    prompts: list[dict],
    tests: list[dict] | None = None,
    tags: dict[str, str] | None = None,
    author: str = "",
    description: str = "",
    id: str | None = None,  # noqa: A002 - the contract's name
    created_at: datetime | None = None,
    is_redteam: bool = False,
) -> Eval:
    """Insert an eval with its prompt texts, dataset and tags in one transaction.

    Prompt texts, datasets and tags are content-addressed and reused across evals.
    """
    created_at = created_at or timezone.now()
    if timezone.is_naive(created_at):
        created_at = timezone.make_aware(created_at, UTC)
    eval_id = validate_eval_id(id) if id is not None else new_eval_id(created_at)
    if not isinstance(config, dict):
        raise Invalid("config must be a JSON object.", field="config")
    if not isinstance(prompts, list):
        raise Invalid("prompts must be a list.", field="prompts")
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, dict) or not isinstance(prompt.get("raw"), str):
            raise Invalid(f"prompts[{index}] needs a string 'raw'.", index=index, field="raw")
    if tests is not None and not isinstance(tests, list):
        raise Invalid("tests must be a list.", field="tests")
    _reject_non_finite(config, "config")
    _reject_non_finite(tests, "tests")
    for index, prompt in enumerate(prompts):
        extras = {k: v for k, v in prompt.items() if k not in PROMPT_COLUMNS}
        _reject_non_finite(extras, f"prompts[{index}]")
    tags = tags or {}
    if not isinstance(tags, dict):
        raise Invalid("tags must be an object of name → value.", field="tags")

    with transaction.atomic():
        if Eval.objects.filter(pk=eval_id).exists():
            raise Conflict(f"An eval with id {eval_id!r} already exists.", id=eval_id)
        eval_ = Eval.objects.create(
            id=eval_id,
            created_at=created_at,
            author=author or "",
            description=description or "",
            config=config,
            status=EvalStatus.RUNNING,
            is_redteam=is_redteam,
            vars=derive_vars(tests),
            last_written_at=timezone.now(),
        )
        texts = {text_sha256(p["raw"]): p["raw"] for p in prompts}
        PromptText.objects.bulk_create(
            [PromptText(id=digest, text=raw, content_hash=digest) for digest, raw in texts.items()],
            ignore_conflicts=True,
        )
        EvalPrompt.objects.bulk_create(
            [
                EvalPrompt(
                    eval=eval_,
                    prompt_text_id=text_sha256(p["raw"]),
                    prompt_idx=idx,
                    label=str(p.get("label") or p["raw"]),
                    provider=_provider_id(p.get("provider")),
                    extra={k: v for k, v in p.items() if k not in PROMPT_COLUMNS},
                )
                for idx, p in enumerate(prompts)
            ]
        )
        EvalPromptStats.objects.bulk_create(
            [EvalPromptStats(eval=eval_, prompt_idx=idx) for idx in range(len(prompts))]
        )
        _link_dataset(eval_, tests)
        _link_tags(eval_, tags)
    transaction.on_commit(lambda: write_signal(eval_id))
    return eval_


def update_eval_header(
    *,
    eval: Eval,  # noqa: A002
    config: dict,
    author: str = "",
    description: str = "",
    created_at: datetime | None = None,
    tags: dict[str, str] | None = None,
    tests: list[dict] | None = None,
    is_redteam: bool = False,
) -> Eval:
    """Set what describes an eval — config, dataset, tags, author, description, creation time.

    For writers that learn these after the results: a promptfoo export puts `config` and
    `metadata` after them, and the importer reads it once. The rows end as create_eval with
    the same arguments would have left them: the dataset and tags are replaced, and the
    vars are the tests' vars followed by those already collected from the results (var
    names only ever grow). `created_at=None` keeps the current creation time.
    """
    if not isinstance(config, dict):
        raise Invalid("config must be a JSON object.", field="config")
    if tests is not None and not isinstance(tests, list):
        raise Invalid("tests must be a list.", field="tests")
    _reject_non_finite(config, "config")
    _reject_non_finite(tests, "tests")
    tags = tags or {}
    if not isinstance(tags, dict):
        raise Invalid("tags must be an object of name → value.", field="tags")
    if created_at is not None and timezone.is_naive(created_at):
        created_at = timezone.make_aware(created_at, UTC)

    now = timezone.now()
    with transaction.atomic():
        current = Eval.objects.select_for_update().filter(pk=eval.pk).values("vars").first()
        if current is None:
            from alchemy_site.errors import NotFound

            raise NotFound(f"Eval {eval.id} does not exist.")
        updates: dict[str, Any] = {
            "config": config,
            "author": author or "",
            "description": description or "",
            "is_redteam": is_redteam,
            "vars": list(dict.fromkeys([*derive_vars(tests), *(current["vars"] or [])])),
            "last_written_at": now,
        }
        if created_at is not None:
            updates["created_at"] = created_at
        Eval.objects.filter(pk=eval.pk).update(**updates)
        EvalDataset.objects.filter(eval_id=eval.pk).delete()
        EvalTag.objects.filter(eval_id=eval.pk).delete()
        _link_dataset(eval, tests)
        _link_tags(eval, tags)
    for name, value in updates.items():
        setattr(eval, name, value)
    transaction.on_commit(lambda: write_signal(eval.id, now))
    _publish_after_commit(eval.id)
    return eval


def _link_dataset(eval_: Eval, tests: list[dict] | None) -> None:
    if tests:
        dataset_id = hashlib.sha256(canonical_json(tests).encode()).hexdigest()
        Dataset.objects.bulk_create([Dataset(id=dataset_id, tests=tests)], ignore_conflicts=True)
        EvalDataset.objects.create(eval=eval_, dataset_id=dataset_id)


def _link_tags(eval_: Eval, tags: dict[str, str]) -> None:
    if tags:
        pairs = [(str(name), "" if value is None else str(value)) for name, value in tags.items()]
        Tag.objects.bulk_create(
            [Tag(name=name, value=value) for name, value in pairs], ignore_conflicts=True
        )
        tag_ids = _tag_ids(pairs)
        EvalTag.objects.bulk_create([EvalTag(eval=eval_, tag_id=tag_id) for tag_id in tag_ids])


PROMPT_COLUMNS = {"raw", "label", "provider", "metrics", "id", "display"}


def _tag_ids(pairs: list[tuple[str, str]]) -> list[int]:
    from django.db.models import Q

    query = Q()
    for name, value in pairs:
        query |= Q(name=name, value=value)
    return list(Tag.objects.filter(query).values_list("id", flat=True))


def _provider_id(provider: Any) -> str:
    if isinstance(provider, dict):
        return str(provider.get("id") or provider.get("label") or "")
    return "" if provider is None else str(provider)


# --- results -----------------------------------------------------------------------------


@dataclass
class Contribution:
    """What one result adds to its prompt's aggregates (subtracted again on re-rating)."""

    result_count: int = 0
    pass_count: int = 0
    fail_count: int = 0
    error_count: int = 0
    score_sum: float = 0.0
    assert_pass_count: int = 0
    assert_fail_count: int = 0
    token_prompt: int = 0
    token_completion: int = 0
    token_total: int = 0
    token_cached: int = 0
    token_num_requests: int = 0
    assert_token_prompt: int = 0
    assert_token_completion: int = 0
    assert_token_total: int = 0
    assert_token_cached: int = 0
    latency_sum_ms: int = 0
    cost_sum: float = 0.0
    named_score_sums: dict[str, float] = field(default_factory=dict)
    named_score_weights: dict[str, float] = field(default_factory=dict)
    # The same, for the results of each outcome (OUTCOMES): the stats of the passes,
    # failures and errors views without reading a result.
    by_outcome: dict[str, Contribution] = field(default_factory=dict)

    COUNTERS = (
        "result_count", "pass_count", "fail_count", "error_count", "score_sum",
        "assert_pass_count", "assert_fail_count", "token_prompt", "token_completion",
        "token_total", "token_cached", "token_num_requests", "assert_token_prompt",
        "assert_token_completion", "assert_token_total", "assert_token_cached",
        "latency_sum_ms", "cost_sum",
    )  # fmt: skip

    def add(self, other: Contribution, sign: int = 1) -> None:
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        for key, value in other.named_score_sums.items():
            self.named_score_sums[key] = self.named_score_sums.get(key, 0.0) + sign * value
        for key, value in other.named_score_weights.items():
            self.named_score_weights[key] = self.named_score_weights.get(key, 0.0) + sign * value
        for outcome, part in other.by_outcome.items():
            self.outcome(outcome).add(part, sign)

    def outcome(self, outcome: str) -> Contribution:
        part = self.by_outcome.get(outcome)
        if part is None:
            part = self.by_outcome[outcome] = Contribution()
        return part

    def totalled(self) -> Contribution:
        """Add the outcomes into the totals (results are accumulated into their outcome)."""
        for part in self.by_outcome.values():
            self.add(part)  # an outcome's part has no outcomes of its own
        return self

    def merged_outcomes(self, stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The stored per-outcome aggregates (EvalPromptStats.by_outcome) with these added."""
        merged = dict(stored or {})
        for outcome, part in self.by_outcome.items():
            row = dict(merged.get(outcome) or {})
            for name in self.COUNTERS:
                row[name] = row.get(name, 0) + getattr(part, name)
            row["named_score_sums"], row["named_score_weights"] = part.merged_named_scores(
                row.get("named_score_sums") or {}, row.get("named_score_weights") or {}
            )
            merged[outcome] = row
        return merged

    def merged_named_scores(
        self, sums: dict[str, float], weights: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Stored named-score sums and weights with this contribution added.

        A metric whose weight drops to zero (its last result re-rated away) disappears.
        """
        sums, weights = dict(sums or {}), dict(weights or {})
        for key, value in self.named_score_sums.items():
            sums[key] = sums.get(key, 0.0) + value
        for key, value in self.named_score_weights.items():
            weights[key] = weights.get(key, 0.0) + value
        for key in [k for k, w in weights.items() if w <= 0]:
            weights.pop(key)
            sums.pop(key, None)
        return sums, weights


# A result's outcome: the passes, failures and errors views show exactly these.
OUTCOMES = ("pass", "fail", "error")


def outcome_of(success: bool, failure_reason: int) -> str:
    if success:
        return "pass"
    return "error" if failure_reason == FailureReason.ERROR else "fail"


def contribution_of(
    *, success: bool, failure_reason: int, score: float, latency_ms: int, cost: float,
    facts: tuple[int, ...], named_scores: Any,
) -> Contribution:  # fmt: skip
    """The aggregate contribution of one stored result, computed from its columns."""
    c = Contribution()
    accumulate(
        c.outcome(outcome_of(success, failure_reason)), success=success,
        failure_reason=failure_reason, score=score, latency_ms=latency_ms, cost=cost,
        facts=facts, named_scores=named_scores,
    )  # fmt: skip
    return c.totalled()


def accumulate(
    c: Contribution, *, success: bool, failure_reason: int, score: float, latency_ms: int,
    cost: float, facts: tuple[int, ...], named_scores: Any,
) -> None:  # fmt: skip
    """Add one result's contribution to `c` in place (no per-result Contribution object).

    `facts` are its FACT_COLUMNS values (evals.facts.result_facts), so nothing here walks
    the result's JSON again.
    """
    c.result_count += 1
    c.score_sum += score
    c.latency_sum_ms += latency_ms
    c.cost_sum += cost
    if success:
        c.pass_count += 1
    elif failure_reason == FailureReason.ERROR:
        c.error_count += 1
    else:
        c.fail_count += 1
    (a_pass, a_fail, t_prompt, t_completion, t_total, t_cached, t_requests,
     g_prompt, g_completion, g_total, g_cached) = facts  # fmt: skip
    c.assert_pass_count += a_pass
    c.assert_fail_count += a_fail
    c.token_prompt += t_prompt
    c.token_completion += t_completion
    c.token_total += t_total
    c.token_cached += t_cached
    c.token_num_requests += t_requests
    c.assert_token_prompt += g_prompt
    c.assert_token_completion += g_completion
    c.assert_token_total += g_total
    c.assert_token_cached += g_cached
    if isinstance(named_scores, dict) and named_scores:
        sums, weights = c.named_score_sums, c.named_score_weights
        for key, value in named_scores.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[key] = sums.get(key, 0.0) + float(value)
                weights[key] = weights.get(key, 0.0) + 1.0


def contribution_of_row(row: EvalResult) -> Contribution:
    return contribution_of(
        success=row.success, failure_reason=row.failure_reason, score=row.score,
        latency_ms=row.latency_ms, cost=row.cost, facts=facts_of_row(row),
        named_scores=row.named_scores,
    )  # fmt: skip


def facts_of_row(row: EvalResult) -> tuple[int, ...]:
    return tuple(getattr(row, column) or 0 for column in FACT_COLUMNS)


# The results table's integer columns (indices, latency) are 32-bit on PostgreSQL.
INT_COLUMN_MAX = 2**31 - 1


# Integers beyond this are no float (float() would raise OverflowError).
_FLOAT_INT_MAX = int(sys.float_info.max)


def _number(
    result: dict, key: str, index: int, default: float = 0.0, limit: float = _FLOAT_INT_MAX
) -> float:
    """A finite number within ±`limit` (a column's range), or Invalid naming the field."""
    value = result.get(key)
    if value is None:
        return default
    kind = type(value)  # exact types: a bool is not a number here
    if ((kind is float and math.isfinite(value)) or kind is int) and -limit <= value <= limit:
        return float(value)
    within = "" if limit == _FLOAT_INT_MAX else f" within ±{limit}"
    raise Invalid(
        f"results[{index}].{key} must be a finite number{within}, got {value!r}.",
        index=index,
        field=key,
    )


def _index(result: dict, key: str, index: int, limit: int = INT_COLUMN_MAX) -> int:
    value = result.get(key)
    if type(value) is int and 0 <= value <= limit:
        return value
    raise Invalid(
        f"results[{index}].{key} must be an integer from 0 to {limit}, got {value!r}.",
        index=index,
        field=key,
    )


def _json_field(result: dict, key: str, index: int, kinds: tuple[type, ...]) -> Any:
    value = result.get(key)
    if value is not None and not isinstance(value, kinds):
        names = " or ".join(
            k.__name__.replace("dict", "object").replace("str", "string") for k in kinds
        )
        raise Invalid(f"results[{index}].{key} must be {names}.", index=index, field=key)
    return value


def normalize_result(result: Any, index: int) -> dict[str, Any]:
    """promptfoo's EvaluateResult (camelCase) → EvalResult column values, or Invalid."""
    if not isinstance(result, dict):
        raise Invalid(f"results[{index}] must be an object.", index=index, field=None)
    prompt_idx = _index(result, "promptIdx", index)
    test_idx = _index(result, "testIdx", index)
    success = result.get("success", False)
    if not isinstance(success, bool):
        raise Invalid(
            f"results[{index}].success must be true or false.", index=index, field="success"
        )
    score = _number(result, "score", index, 1.0 if success else 0.0)
    latency = _number(result, "latencyMs", index, limit=INT_COLUMN_MAX)
    response = _json_field(result, "response", index, (dict,))
    grading = _json_field(result, "gradingResult", index, (dict,))
    test_case = _json_field(result, "testCase", index, (dict,))
    metadata = _json_field(result, "metadata", index, (dict,))
    named = _json_field(result, "namedScores", index, (dict,))
    prompt = _json_field(result, "prompt", index, (dict, str))
    provider = _json_field(result, "provider", index, (dict, str))
    error = result.get("error")
    if error is not None and not isinstance(error, str):
        error = canonical_json(error)
    cost_default = response.get("cost") if isinstance(response, dict) else None
    cost = _number(
        result, "cost", index, cost_default if isinstance(cost_default, int | float) else 0.0
    )
    reason = result.get("failureReason")
    if reason is None:
        if success:
            reason = FailureReason.NONE
        elif error and not grading:
            reason = FailureReason.ERROR
        else:
            reason = FailureReason.ASSERT
    elif reason not in (0, 1, 2) or isinstance(reason, bool):
        raise Invalid(
            f"results[{index}].failureReason must be 0, 1 or 2, got {reason!r}.",
            index=index,
            field="failureReason",
        )
    elif success:
        # A passing result has no failure reason (as promptfoo writes them): each result
        # is in exactly one of the passes, failures and errors views.
        reason = FailureReason.NONE
    if test_case is None:
        vars_ = result.get("vars")
        test_case = {"vars": vars_} if isinstance(vars_, dict) else {}
    if named is None and isinstance(grading, dict) and isinstance(grading.get("namedScores"), dict):
        named = grading["namedScores"]
    return {
        "prompt_idx": prompt_idx,
        "test_idx": test_idx,
        "test_case": test_case,
        "prompt": {"raw": prompt, "label": prompt} if isinstance(prompt, str) else (prompt or {}),
        "provider": {"id": provider} if isinstance(provider, str) else (provider or {}),
        "response": response,
        "error": error or "",
        "failure_reason": int(reason),
        "success": success,
        "score": score,
        "latency_ms": int(latency),
        "cost": cost,
        "grading_result": grading,
        "named_scores": named or {},
        "metadata": metadata or {},
        "facts": result_facts(response, grading),
    }


def _blob_hooks():
    """blobs.services' externalize/save/delete functions, when that app provides them."""
    try:
        from blobs import services as blob_services
    except ImportError:
        return None
    needed = (
        "externalize_results", "texts_with_media_marker", "save_references",
        "delete_references_for_eval",
    )  # fmt: skip
    if not all(hasattr(blob_services, name) for name in needed):
        return None
    return blob_services


def add_results(*, eval: Eval, results: list[dict]) -> AddResultsOutcome:  # noqa: A002
    """Validate and store a batch of results, update the aggregates, then signal.

    All or nothing: the first invalid result raises Invalid (with its index and field)
    before anything is written. Results for (test_idx, prompt_idx) pairs already stored
    are skipped, which is what makes resuming an interrupted eval safe.
    """
    if not isinstance(results, list):
        raise Invalid("results must be a list.", field="results")
    limit = settings.RESULTS_BATCH_LIMIT
    if len(results) > limit:
        raise TooLarge(
            f"A batch holds at most {limit} results; this one has {len(results)}. Split it.",
            limit=limit,
        )
    if eval.status in FINAL_STATUSES:
        raise Conflict(f"Eval {eval.id} is {eval.status}; it takes no more results.", id=eval.id)
    rows = [normalize_result(result, index) for index, result in enumerate(results)]
    if not rows:
        return AddResultsOutcome(stored=0, skipped=0)
    dump = _json_adapter()
    encoded = [_encoded(row, dump) for row in rows]
    blobs = _blob_hooks()
    refs = _externalize_media(eval.id, blobs, results, rows, encoded, dump) if blobs else []

    # No savepoint inside a caller's transaction (an import's): a failure there fails the
    # whole import anyway, and a savepoint's sub-journal copied every page the batch
    # changed that existed before it (a 100k import wrote 416 MB with them, 273 without:
    # `make bench`; and it was memory with temp_store=MEMORY). Outermost (the API, the
    # evaluator) this is a plain atomic.
    with transaction.atomic(savepoint=False):
        fresh = Eval.objects.select_for_update().filter(pk=eval.pk).values("status", "vars").first()
        if fresh is None:
            from alchemy_site.errors import NotFound

            raise NotFound(f"Eval {eval.id} does not exist.")
        if fresh["status"] in FINAL_STATUSES:
            raise Conflict(f"Eval {eval.id} is {fresh['status']}; it takes no more results.")
        seen = _stored_pairs(eval.id, {row["test_idx"] for row in rows})
        prompt_texts = dict(
            EvalPrompt.objects.filter(eval_id=eval.id).values_list("prompt_idx", "prompt_text_id")
        )
        known_tests = {test_idx for test_idx, _ in seen}
        new_tests: set[int] = set()
        fresh_rows: list[tuple[dict[str, Any], list[Any]]] = []
        by_prompt: dict[int, Contribution] = {}
        # (prompt_idx, success, failure_reason) → that prompt's part for the outcome.
        parts: dict[tuple[int, bool, int], Contribution] = {}
        var_names = dict.fromkeys(fresh["vars"] or [])
        for row, texts in zip(rows, encoded, strict=True):
            test_idx, prompt_idx = row["test_idx"], row["prompt_idx"]
            key = (test_idx, prompt_idx)
            if key in seen:
                continue
            seen.add(key)
            if test_idx not in known_tests:
                new_tests.add(test_idx)
            fresh_rows.append((row, texts))
            success, reason = row["success"], row["failure_reason"]
            part = parts.get((prompt_idx, success, reason))
            if part is None:
                contribution = by_prompt.get(prompt_idx)
                if contribution is None:
                    contribution = by_prompt[prompt_idx] = Contribution()
                part = contribution.outcome(outcome_of(success, reason))
                parts[prompt_idx, success, reason] = part
            accumulate(
                part, success=success, failure_reason=reason, score=row["score"],
                latency_ms=row["latency_ms"], cost=row["cost"], facts=row["facts"],
                named_scores=row["named_scores"],
            )  # fmt: skip
            vars_ = row["test_case"].get("vars")
            if isinstance(vars_, dict):
                for name in vars_:
                    if name not in var_names:
                        var_names[name] = None
        if fresh_rows:
            last_id = search.last_indexed_id()
            _insert_results(eval.id, fresh_rows, prompt_texts)
            search.index_results_after(eval_id=eval.id, after_id=last_id)
            for contribution in by_prompt.values():
                contribution.totalled()
            _apply_contributions(eval.id, by_prompt)
            if blobs and refs:
                blobs.save_references(refs)
        now = timezone.now()
        updates: dict[str, Any] = {"last_written_at": now}
        if list(var_names) != list(fresh["vars"] or []):
            updates["vars"] = list(var_names)
        if fresh["status"] == EvalStatus.INTERRUPTED:
            updates["status"] = EvalStatus.RUNNING
        Eval.objects.filter(pk=eval.pk).update(
            test_count=F("test_count") + len(new_tests), **updates
        )
    for name, value in updates.items():
        setattr(eval, name, value)
    eval.test_count = (eval.test_count or 0) + len(new_tests)
    transaction.on_commit(lambda: write_signal(eval.id, now))
    _publish_after_commit(eval.id)
    return AddResultsOutcome(stored=len(fresh_rows), skipped=len(rows) - len(fresh_rows))


def _stored_pairs(eval_id: str, test_indices: set[int]) -> set[tuple[int, int]]:
    """The (test_idx, prompt_idx) pairs already stored for these tests.

    A dense batch (the usual case: an evaluator or an import writes tests in order) is one
    range seek on the unique index, which finds nothing when the tests are new; a sparse one
    asks for its tests by value so it never walks the rows stored between them.
    """
    low, high = min(test_indices), max(test_indices)
    results = EvalResult.objects.filter(eval_id=eval_id)
    if high - low < 2 * len(test_indices):
        query = results.filter(test_idx__gte=low, test_idx__lte=high)
        return set(query.values_list("test_idx", "prompt_idx"))
    found: set[tuple[int, int]] = set()
    ordered = sorted(test_indices)
    for start in range(0, len(ordered), PAIR_LOOKUP_CHUNK):
        chunk = ordered[start : start + PAIR_LOOKUP_CHUNK]
        found.update(results.filter(test_idx__in=chunk).values_list("test_idx", "prompt_idx"))
    return found


PAIR_LOOKUP_CHUNK = 500
# What add_results writes for every result, in INSERT order. Must name every concrete
# column but the id (tests check it), so a new field can't be silently left out.
RESULT_COLUMNS = (
    "eval_id", "prompt_idx", "test_idx", "test_case", "prompt", "prompt_text_id", "provider",
    "request", "response", "error", "failure_reason", "success", "score", "latency_ms",
    "cost", "grading_result", "named_scores", "metadata", "created_at", "updated_at",
    *FACT_COLUMNS,
)  # fmt: skip


# A result's JSON columns in the order `_encoded` returns them.
JSON_COLUMNS = (
    "test_case", "prompt", "provider", "response", "grading_result", "named_scores", "metadata",
)  # fmt: skip
# Those that can hold media (blobs.services.SCANNED_FIELDS, the stored names), by position.
MEDIA_POSITIONS = tuple(
    JSON_COLUMNS.index(name) for name in ("response", "grading_result", "metadata")
)


def _encoded(row: dict[str, Any], dump: Callable[[Any], Any]) -> list[Any]:
    """The row's JSON columns as the INSERT takes them (NULL for a None value)."""
    return [None if row[column] is None else dump(row[column]) for column in JSON_COLUMNS]


def _externalize_media(
    eval_id: str,
    blobs: Any,
    results: list[dict],
    rows: list[dict[str, Any]],
    encoded: list[list[Any]],
    dump: Callable[[Any], Any],
) -> list:
    """Move media in the batch to blobs; the rows (and their JSON) then hold blob URIs.

    Only results whose encoded JSON shows a media marker are handed to the blobs app,
    which walks their strings; the rest cost a share of one substring search over the
    batch's texts (blobs.services.texts_with_media_marker).
    """
    texts, owners = _media_texts(results, encoded)
    maybe = sorted({owners[i] for i in blobs.texts_with_media_marker(texts)})
    if not maybe:
        return []
    refs = blobs.externalize_results(eval_id=eval_id, results=[results[i] for i in maybe])
    if refs:
        for position in maybe:
            # Externalizing rewrote the dicts in place; take the references, not the bytes.
            row, result = rows[position], results[position]
            row["response"] = result.get("response")
            row["grading_result"] = result.get("gradingResult")
            row["metadata"] = result.get("metadata") or {}
            encoded[position] = _encoded(row, dump)
    return refs


def _media_texts(results: list[dict], encoded: list[list[Any]]) -> tuple[list[str], list[int]]:
    """The batch's texts that can hold media, and the position of the result each is from."""
    texts: list[str] = []
    owners: list[int] = []
    for position, (result, columns) in enumerate(zip(results, encoded, strict=True)):
        for column in MEDIA_POSITIONS:
            if (text := columns[column]) is not None:
                texts.append(text)
                owners.append(position)
        output = result.get("output")  # promptfoo's older results put it at the top level
        if output is not None:
            texts.append(output if isinstance(output, str) else fastjson.dumps(output))
            owners.append(position)
    return texts, owners


def _insert_results(
    eval_id: str, rows: list[tuple[dict[str, Any], list[Any]]], prompt_texts: dict[int, str]
) -> None:
    """One executemany INSERT for the batch, each JSON column encoded exactly once.

    This is what bulk_create would send (same adapters: `adapt_json_value`, the datetime
    field's own preparation, NULL for a None JSON value) without building a model instance
    and compiling a many-row statement per batch, which cost several times the insert.
    `rows` pairs each row with its JSON columns, encoded by `_encoded`.
    """
    ops = connection.ops
    quote = ops.quote_name
    table = EvalResult._meta.db_table
    columns = ", ".join(quote(EvalResult._meta.get_field(name).column) for name in RESULT_COLUMNS)
    placeholders = ", ".join(
        json_placeholder() if name in JSON_RESULT_COLUMNS else "%s" for name in RESULT_COLUMNS
    )
    sql = f"INSERT INTO {quote(table)} ({columns}) VALUES ({placeholders})"
    stamp = EvalResult._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    params = [
        (
            eval_id,
            row["prompt_idx"],
            row["test_idx"],
            test_case,
            prompt,
            prompt_texts.get(row["prompt_idx"]),
            provider,
            None,
            response,
            row["error"],
            row["failure_reason"],
            row["success"],
            row["score"],
            row["latency_ms"],
            row["cost"],
            grading_result,
            named_scores,
            metadata,
            stamp,
            stamp,
            *row["facts"],
        )
        for row, (
            test_case,
            prompt,
            provider,
            response,
            grading_result,
            named_scores,
            metadata,
        ) in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


# Every JSON column the INSERT writes (JSON_COLUMNS and `request`, always NULL here).
JSON_RESULT_COLUMNS = frozenset(
    name for name in RESULT_COLUMNS
    if isinstance(EvalResult._meta.get_field(name), models.JSONField)
)  # fmt: skip


def _json_adapter() -> Callable[[Any], Any]:
    """How the write path encodes a JSON column: JSON text, through orjson.

    Django writes a JSONField value as `json.dumps(value)` (psycopg's Jsonb calls it at
    execute time); orjson writes the same values (compact, UTF-8; a test compares them
    decoded) four times faster, which was most of what encoding a batch cost, and the
    media check reads the same text. PostgreSQL takes it as `%s::jsonb` (json_placeholder).
    NaN and ±Infinity, which JSON cannot hold, are written as null on every database.
    """
    return fastjson.dumps


def json_placeholder() -> str:
    """The SQL placeholder for a JSON column's value as `_json_adapter` encodes it."""
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def _apply_contributions(eval_id: str, by_prompt: dict[int, Contribution]) -> None:
    """One UPDATE per prompt adding the batch's counters; the JSON ones merged under a lock.

    The counters are added in SQL (`col = col + delta`), so only the small JSON objects
    (named scores, per-outcome aggregates) are read back; the row lock (BEGIN IMMEDIATE on
    SQLite) covers that read.
    """
    stats = EvalPromptStats.objects.filter(eval_id=eval_id, prompt_idx__in=list(by_prompt))
    stored = ("prompt_idx", "named_score_sums", "named_score_weights", "by_outcome")
    named = {
        idx: (sums, weights, outcomes)
        for idx, sums, weights, outcomes in stats.select_for_update().values_list(*stored)
    }
    missing = [idx for idx in by_prompt if idx not in named]
    if missing:
        EvalPromptStats.objects.bulk_create(
            [EvalPromptStats(eval_id=eval_id, prompt_idx=idx) for idx in missing],
            ignore_conflicts=True,
        )
        named.update(
            (idx, (sums, weights, outcomes))
            for idx, sums, weights, outcomes in stats.filter(prompt_idx__in=missing)
            .select_for_update()
            .values_list(*stored)
        )
    # Plain UPDATE statements: the ORM's update() compiled 18 F() expressions per prompt
    # per batch, a few percent of add_results.
    quote = connection.ops.quote_name
    dump = _json_adapter()
    with connection.cursor() as cursor:
        for idx, contribution in by_prompt.items():
            assignments, params = [], []
            for name in Contribution.COUNTERS:
                delta = getattr(contribution, name)
                if delta:
                    assignments.append(f"{quote(name)} = {quote(name)} + %s")
                    params.append(delta)
            stored_sums, stored_weights, stored_outcomes = named[idx]
            if contribution.named_score_sums or contribution.named_score_weights:
                sums, weights = contribution.merged_named_scores(stored_sums, stored_weights)
                assignments += [f"{quote('named_score_sums')} = {json_placeholder()}",
                                f"{quote('named_score_weights')} = {json_placeholder()}"]  # fmt: skip
                params += [dump(sums), dump(weights)]
            if contribution.by_outcome:
                assignments.append(f"{quote('by_outcome')} = {json_placeholder()}")
                params.append(dump(contribution.merged_outcomes(stored_outcomes)))
            if assignments:
                cursor.execute(
                    f"UPDATE {quote(EvalPromptStats._meta.db_table)} SET "
                    f"{', '.join(assignments)} WHERE eval_id = %s AND prompt_idx = %s",
                    [*params, eval_id, idx],
                )


def complete_eval(
    *,
    eval: Eval,
    status: str = EvalStatus.COMPLETE,
    duration_ms: int | None = None,  # noqa: A002
    snapshot: bool = True,
) -> Eval:
    """Set the final status (complete, failed or interrupted) and the duration.

    With `snapshot`, the eval's outcomes test by test are stored after the commit, for the
    compare page (evals.outcomes). An import passes False: the snapshot of a 1M-result eval
    takes ~20–45 MB for a moment, more than the import itself grows by, and the first
    compare of the eval takes it instead (~0.8 s at 1M, once).
    """
    if status not in EvalStatus.values:
        raise Invalid(
            f"status must be one of {', '.join(EvalStatus.values)}, got {status!r}.", field="status"
        )
    if duration_ms is not None and (not isinstance(duration_ms, int) or duration_ms < 0):
        raise Invalid("duration_ms must be a non-negative integer.", field="duration_ms")
    now = timezone.now()
    with transaction.atomic():
        updates: dict[str, Any] = {"status": status, "last_written_at": now}
        if duration_ms is not None:
            updates["duration_ms"] = duration_ms
        Eval.objects.filter(pk=eval.pk).update(**updates)
    for name, value in updates.items():
        setattr(eval, name, value)
    transaction.on_commit(lambda: write_signal(eval.id, now))
    _publish_after_commit(eval.id)
    if snapshot:
        # After the commit, so the write lock is not held while the results are read.
        transaction.on_commit(lambda: _store_outcomes(eval.id))
    return eval


def _store_outcomes(eval_id: str) -> None:
    with transaction.atomic():
        outcomes.store(eval_id)


def effective_status(eval: Eval, now: datetime | None = None) -> str:  # noqa: A002
    """`running` evals whose writer went quiet too long are shown as interrupted."""
    if eval.status != EvalStatus.RUNNING:
        return eval.status
    idle = timedelta(seconds=settings.EVAL_IDLE_INTERRUPTED_SECONDS)
    last = eval.last_written_at or eval.created_at
    if last and (now or timezone.now()) - last > idle:
        return EvalStatus.INTERRUPTED
    return EvalStatus.RUNNING


def delete_eval(*, eval: Eval) -> None:  # noqa: A002
    """Delete an eval with its results, aggregates, junction rows and blob references.

    Every step is a set-based DELETE (nothing is loaded into Python); traces stay, with
    their eval link set to NULL by the foreign key's SET_NULL.
    """
    blobs = _blob_hooks()
    with transaction.atomic():
        if blobs:
            blobs.delete_references_for_eval(eval.id)
        search.unindex_eval(eval_id=eval.id)
        _delete_results(eval.id)
        EvalPromptStats.objects.filter(eval_id=eval.id).delete()
        EvalOutcomes.objects.filter(eval_id=eval.id).delete()
        EvalPrompt.objects.filter(eval_id=eval.id).delete()
        EvalDataset.objects.filter(eval_id=eval.id).delete()
        EvalTag.objects.filter(eval_id=eval.id).delete()
        Eval.objects.filter(pk=eval.pk).delete()
    eval_id = eval.id
    transaction.on_commit(lambda: write_signal(eval_id))
    _publish_after_commit(eval_id)


def _delete_results(eval_id: str) -> None:
    """Set-based delete of an eval's results, honouring other apps' FKs without loading rows.

    Django's collector would load every result to null out a SET_NULL foreign key (a trace's
    result link); doing each related step as one UPDATE/DELETE keeps 1M-row deletes flat.
    """
    for relation in EvalResult._meta.related_objects:
        name = relation.field.name
        related = relation.related_model._base_manager.filter(**{f"{name}__eval_id": eval_id})
        if relation.on_delete is models.SET_NULL:
            related.update(**{name: None})
        elif relation.on_delete is models.CASCADE:
            related.delete()
        elif relation.on_delete is models.PROTECT and related.exists():
            raise Conflict(
                f"Eval {eval_id} has results that {relation.related_model._meta.label} rows "
                "still protect; delete those first."
            )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {EvalResult._meta.db_table} WHERE eval_id = %s", [eval_id])


HUMAN_ASSERTION = "human"


def rate_result(
    *,
    eval: Eval,
    result_id: int,
    passed: bool,
    reason: str = "",
    author: str = "",  # noqa: A002
) -> EvalResult:
    """Record a manual pass/fail on one result; the prompt's aggregates move with it.

    Like promptfoo, the rating is a `human` component result inside gradingResult, and the
    result's success/score follow it.
    """
    from alchemy_site.errors import NotFound

    if not isinstance(passed, bool):
        raise Invalid("pass must be true or false.", field="pass")
    with transaction.atomic():
        row = EvalResult.objects.select_for_update().filter(eval_id=eval.id, pk=result_id).first()
        if row is None:
            raise NotFound(f"Result {result_id} is not part of eval {eval.id}.")
        before = contribution_of_row(row)
        grading = dict(row.grading_result or {})
        components = [
            c
            for c in grading.get("componentResults") or []
            if not (
                isinstance(c, dict) and (c.get("assertion") or {}).get("type") == HUMAN_ASSERTION
            )
        ]
        human = {
            "pass": passed,
            "score": 1.0 if passed else 0.0,
            "reason": reason or ("Manual pass" if passed else "Manual fail"),
            "assertion": {"type": HUMAN_ASSERTION, "value": author}
            if author
            else {"type": HUMAN_ASSERTION},
        }
        components.append(human)
        grading.update(
            {
                "pass": passed,
                "score": human["score"],
                "reason": human["reason"],
                "componentResults": components,
            }
        )
        search.unindex_results(eval_id=eval.id, ids=[row.pk])
        row.grading_result = grading
        row.success = passed
        row.score = human["score"]
        row.failure_reason = FailureReason.NONE if passed else FailureReason.ASSERT
        for column, value in zip(FACT_COLUMNS, result_facts(row.response, grading), strict=True):
            setattr(row, column, value)
        row.save(
            update_fields=[
                "grading_result", "success", "score", "failure_reason", "updated_at",
                *FACT_COLUMNS,
            ]
        )  # fmt: skip
        delta = contribution_of_row(row)
        delta.add(before, sign=-1)
        _apply_contributions(eval.id, {row.prompt_idx: delta})
        search.index_results(eval_id=eval.id, results=[row])
        # The rating changed searchable text (the grading reason) even where the aggregates
        # did not move: readers' cached views are keyed on this.
        eval.updated_at = timezone.now()
        Eval.objects.filter(pk=eval.pk).update(updated_at=eval.updated_at)
    transaction.on_commit(lambda: write_signal(eval.id))
    _publish_after_commit(eval.id)
    return row
