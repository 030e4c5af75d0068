"""The eval store's write path: the only code that writes evals, results and aggregates.

The API, the importers and the evaluator all call `create_eval`, `add_results` and
`complete_eval` (an import prepares its batches in a second process, evals.prepare, and
stores them with `store_prepared`, add_results' second half); nothing else inserts rows,
so the per-prompt aggregates can never drift.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from alchemy_site import fastjson
from alchemy_site.errors import Conflict, Invalid
from alchemy_site.sqlite import checkpoint_soon
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
from evals.prepare import (
    PROMPT_IDX,
    ROW_COLUMNS,
    TEST_IDX,
    Contribution,
    PreparedBatch,
    canonical_json,
    check_batch,
    contribution_of,
    contribution_of_prepared,
    prepare_results,
    prepare_row,
    search_text,
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


def contribution_of_row(row: EvalResult) -> Contribution:
    return contribution_of(
        success=row.success, failure_reason=row.failure_reason, score=row.score,
        latency_ms=row.latency_ms, cost=row.cost, facts=facts_of_row(row),
        named_scores=row.named_scores,
    )  # fmt: skip


def facts_of_row(row: EvalResult) -> tuple[int, ...]:
    return tuple(getattr(row, column) or 0 for column in FACT_COLUMNS)


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
    if eval.status in FINAL_STATUSES:
        check_batch(results)
        raise Conflict(f"Eval {eval.id} is {eval.status}; it takes no more results.", id=eval.id)
    return store_prepared(eval=eval, batch=prepare_results(results))


def store_prepared(*, eval: Eval, batch: PreparedBatch) -> AddResultsOutcome:  # noqa: A002
    """Store a batch that evals.prepare validated and encoded: add_results' second half.

    Media goes to blob storage first (file I/O, outside the write lock). The batch's
    rows, search index entries and aggregates are then written in one transaction.
    """
    if eval.status in FINAL_STATUSES:
        raise Conflict(f"Eval {eval.id} is {eval.status}; it takes no more results.", id=eval.id)
    if not batch.rows:
        return AddResultsOutcome(stored=0, skipped=batch.repeated)
    blobs = _blob_hooks()
    refs = _externalize_media(eval.id, blobs, batch) if blobs and batch.media else []

    # No savepoint inside a caller's transaction (an import's): a failure there fails the
    # whole import anyway, and a savepoint's sub-journal copied every page the batch
    # changed that existed before it (a 100k import wrote 416 MB with them, 273 without:
    # `make bench`; and it was memory with temp_store=MEMORY). Outermost (the API, the
    # evaluator) this is a plain atomic.
    with transaction.atomic(savepoint=False):
        fresh = _locked_eval(eval.id)
        if fresh is None:
            from alchemy_site.errors import NotFound

            raise NotFound(f"Eval {eval.id} does not exist.")
        status, stored_vars = fresh
        if status in FINAL_STATUSES:
            raise Conflict(f"Eval {eval.id} is {status}; it takes no more results.")
        rows, aggregates = batch.rows, batch.aggregates
        tests = {row[TEST_IDX] for row in rows}
        seen = _stored_pairs(eval.id, tests)
        if seen:
            rows, aggregates = _without_stored(rows, aggregates, seen)
        new_tests = tests - {test_idx for test_idx, _ in seen}
        if rows:
            last_id = search.last_indexed_id()
            _insert_results(eval.id, rows)
            search.index_results_after(eval_id=eval.id, after_id=last_id)
            for contribution in aggregates.values():
                contribution.totalled()
            _apply_contributions(eval.id, aggregates)
            if refs:
                blobs.save_references(refs)
        now = timezone.now()
        updates: dict[str, Any] = {"last_written_at": now}
        var_names = list(dict.fromkeys([*(stored_vars or []), *batch.var_names]))
        if var_names != list(stored_vars or []):
            updates["vars"] = var_names
        if status == EvalStatus.INTERRUPTED:
            updates["status"] = EvalStatus.RUNNING
        _touch_eval(eval.id, new_tests=len(new_tests), fields=updates)
    for name, value in updates.items():
        setattr(eval, name, value)
    eval.test_count = (eval.test_count or 0) + len(new_tests)
    transaction.on_commit(lambda: write_signal(eval.id, now))
    transaction.on_commit(lambda: checkpoint_soon(connection))
    _publish_after_commit(eval.id)
    return AddResultsOutcome(stored=len(rows), skipped=batch.received - len(rows))


def _without_stored(
    rows: list[tuple], aggregates: dict[int, Contribution], seen: set[tuple[int, int]]
) -> tuple[list[tuple], dict[int, Contribution]]:
    """The rows whose (test, prompt) pair is not stored yet, and the aggregates without the
    others (a resumed eval's first batch; the aggregates are the batch's own copy)."""
    kept = []
    for row in rows:
        if (row[TEST_IDX], row[PROMPT_IDX]) not in seen:
            kept.append(row)
            continue
        dropped = contribution_of_prepared(row)
        for outcome, part in dropped.by_outcome.items():
            aggregates[row[PROMPT_IDX]].outcome(outcome).add(part, sign=-1)
    for contribution in aggregates.values():
        for outcome in [o for o, part in contribution.by_outcome.items() if not part.result_count]:
            del contribution.by_outcome[outcome]
    return kept, {idx: c for idx, c in aggregates.items() if c.by_outcome}


# What every batch reads and writes besides its rows, as plain statements: through the
# ORM, each of these five cost ~0.15 ms to compile per batch (~1 µs a result at 1,000), a
# few times what SQLite takes to run it.


def _locked_eval(eval_id: str) -> tuple[str, list] | None:
    """The eval's status and var names, its row locked (PostgreSQL; SQLite's writer holds
    the database) until the batch commits; None when there is no such eval."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_q('status')}, {_q('vars')} FROM {_q(Eval._meta.db_table)} "
            f"WHERE {_q('id')} = %s{lock}",
            [eval_id],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], _json_value(row[1]))


def _touch_eval(eval_id: str, *, new_tests: int, fields: dict[str, Any]) -> None:
    """Count the batch's new tests and set `fields` (when it was written; vars and status
    when they change), as the ORM's update() would write them."""
    assignments = [f"{_q('test_count')} = {_q('test_count')} + %s"]
    params: list[Any] = [new_tests]
    for name, value in fields.items():
        field = Eval._meta.get_field(name)
        if isinstance(field, models.JSONField):
            assignments.append(f"{_q(field.column)} = {json_placeholder()}")
            params.append(fastjson.dumps(value))
        else:
            assignments.append(f"{_q(field.column)} = %s")
            params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_q(Eval._meta.db_table)} SET {', '.join(assignments)} WHERE {_q('id')} = %s",
            [*params, eval_id],
        )


def _stored_pairs(eval_id: str, test_indices: set[int]) -> set[tuple[int, int]]:
    """The (test_idx, prompt_idx) pairs already stored for these tests.

    A dense batch (the usual case: an evaluator or an import writes tests in order) is one
    range seek on the unique index, which finds nothing when the tests are new; a sparse one
    asks for its tests by value so it never walks the rows stored between them.
    """
    low, high = min(test_indices), max(test_indices)
    select = (
        f"SELECT {_q('test_idx')}, {_q('prompt_idx')} FROM {_q(EvalResult._meta.db_table)} "
        f"WHERE {_q('eval_id')} = %s AND "
    )
    with connection.cursor() as cursor:
        if high - low < 2 * len(test_indices):
            cursor.execute(select + f"{_q('test_idx')} BETWEEN %s AND %s", [eval_id, low, high])
            return set(cursor.fetchall())
        found: set[tuple[int, int]] = set()
        ordered = sorted(test_indices)
        for start in range(0, len(ordered), PAIR_LOOKUP_CHUNK):
            chunk = ordered[start : start + PAIR_LOOKUP_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(select + f"{_q('test_idx')} IN ({marks})", [eval_id, *chunk])
            found.update(cursor.fetchall())
        return found


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _json_value(value: Any) -> Any:
    """A JSON column as a raw cursor returns it (text on both databases), decoded."""
    return fastjson.loads(value) if isinstance(value, str) else value


PAIR_LOOKUP_CHUNK = 500
# What add_results writes for every result, in INSERT order: the eval, the prompt's text,
# the request (never sent by promptfoo's results) and the timestamps, then a prepared row.
# Must name every concrete column but the id (tests check it), so a new field can't be
# silently left out.
RESULT_COLUMNS = ("eval_id", "prompt_text_id", "request", "created_at", "updated_at", *ROW_COLUMNS)


def _externalize_media(eval_id: str, blobs: Any, batch: PreparedBatch) -> list:
    """Move media in the batch's results to blobs; their rows then hold blob URIs.

    Only results whose encoded JSON showed a media marker (evals.prepare) are handed to
    the blobs app, which walks their strings and rewrites them in place; those are then
    prepared again (their numbers, and so the aggregates, do not change).
    """
    positions = sorted(batch.media)
    refs = blobs.externalize_results(
        eval_id=eval_id, results=[batch.media[position] for position in positions]
    )
    if refs:
        for position in positions:
            batch.rows[position] = prepare_row(batch.media[position], position)[0]
    return refs


def _insert_results(eval_id: str, rows: list[tuple]) -> None:
    """One executemany INSERT for the batch's prepared rows.

    This is what bulk_create would send (the same JSON values, the datetime field's own
    preparation, NULL for a None JSON value) without building a model instance and
    compiling a many-row statement per batch, which cost several times the insert.
    """
    table = EvalResult._meta.db_table
    columns = ", ".join(_q(EvalResult._meta.get_field(name).column) for name in RESULT_COLUMNS)
    placeholders = ", ".join(
        json_placeholder() if name in JSON_RESULT_COLUMNS else "%s" for name in RESULT_COLUMNS
    )
    sql = f"INSERT INTO {_q(table)} ({columns}) VALUES ({placeholders})"
    params = insert_params(eval_id, rows)
    if connection.vendor == "postgresql":
        _executemany_bound(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _executemany_bound(sql: str, params: list[tuple]) -> None:
    """executemany with the values bound by the server (PostgreSQL).

    Django's psycopg cursors bind values client-side, so an executemany sent each row as
    SQL text of its own for the server to parse and plan. A plain psycopg cursor on the
    same connection (inside the same transaction) sends the statement once and the rows'
    values after it, pipelined: the bare baseline's way (`make bench`).
    """
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.executemany(sql, params)


def insert_params(eval_id: str, rows: list[tuple]) -> list[tuple]:
    """The INSERT's values for prepared rows (RESULT_COLUMNS): the eval, the text of the
    row's prompt, no request and the timestamps, then the row."""
    stamp = EvalResult._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_q('prompt_idx')}, {_q('prompt_text_id')} "
            f"FROM {_q(EvalPrompt._meta.db_table)} WHERE {_q('eval_id')} = %s",
            [eval_id],
        )
        heads = {idx: (eval_id, text_id, None, stamp, stamp) for idx, text_id in cursor.fetchall()}
    unknown = (eval_id, None, None, stamp, stamp)  # a prompt index the eval does not list
    return [heads.get(row[PROMPT_IDX], unknown) + row for row in rows]


# Every JSON column the INSERT writes (the prepared ones and `request`, always NULL here).
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
    named = _locked_stats(eval_id, list(by_prompt))
    missing = [idx for idx in by_prompt if idx not in named]
    if missing:
        EvalPromptStats.objects.bulk_create(
            [EvalPromptStats(eval_id=eval_id, prompt_idx=idx) for idx in missing],
            ignore_conflicts=True,
        )
        named.update(_locked_stats(eval_id, missing))
    # Plain UPDATE statements: the ORM's update() compiled 18 F() expressions per prompt
    # per batch, a few percent of add_results.
    quote = _q
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


def _locked_stats(eval_id: str, prompts: list[int]) -> dict[int, tuple[dict, dict, dict]]:
    """These prompts' stored named-score sums and weights and per-outcome aggregates, their
    rows locked (PostgreSQL) until the batch commits."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    columns = ("prompt_idx", "named_score_sums", "named_score_weights", "by_outcome")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_q(c) for c in columns)} "
            f"FROM {_q(EvalPromptStats._meta.db_table)} WHERE {_q('eval_id')} = %s AND "
            f"{_q('prompt_idx')} IN ({', '.join(['%s'] * len(prompts))}){lock}",
            [eval_id, *prompts],
        )
        return {
            idx: (_json_value(sums), _json_value(weights), _json_value(outcomes))
            for idx, sums, weights, outcomes in cursor.fetchall()
        }


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
        row.search_text = search_text(
            response=row.response, vars_=(row.test_case or {}).get("vars"),
            grading_result=grading, metadata=row.metadata, error=row.error,
        )  # fmt: skip
        row.save(
            update_fields=[
                "grading_result", "success", "score", "failure_reason", "search_text",
                "updated_at", *FACT_COLUMNS,
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
