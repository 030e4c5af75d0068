"""The registry's write path: create, update and delete prompts; attach metadata and metrics.

Every function is keyword-only, opens its own transaction, and is the one place
its rows are written — the API, the admin, the pages and the commands call these.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alchemy_site.errors import Conflict, Invalid, NotFound
from prompts import lifecycle
from prompts.embeddings import (
    get_embedder,
    is_local_embedder,
    mark_changed,
    parse_vector,
    space_dimensions,
    to_bytes,
    touch_space,
)
from prompts.hashing import content_hash
from prompts.models import (
    EnhancementHistory,
    Metric,
    ModelMetadata,
    Persona,
    Phase,
    Prompt,
    Provider,
    SourceType,
    Tag,
)
from prompts.pricing import cost_for

ChildPolicy = Literal["refuse", "reparent", "cascade"]

# Fields a caller may set directly on create or update.
EDITABLE_FIELDS = (
    "phase",
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "actual_tokens",
    "session_id",
    "source_type",
    "enhancement_method",
    "original_input",
    "persona",
    "target_model_family",
    "target_use_case",
)
CHOICES = {"phase": Phase, "provider": Provider, "persona": Persona, "source_type": SourceType}


@dataclass(frozen=True)
class Vector:
    """A client-supplied embedding and the model that produced it."""

    values: list[float]
    model: str
    provider: str = ""


def normalise_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Lower-case, trimmed, de-duplicated tags; a string is split on commas (the seed's form)."""
    if tags is None:
        return []
    items = tags.split(",") if isinstance(tags, str) else tags
    seen: dict[str, None] = {}
    for item in items:
        name = str(item).strip().lower()
        if name:
            if len(name) > 100:
                raise Invalid(f"Tag {name[:20]!r}… is longer than 100 characters.")
            seen[name] = None
    return list(seen)


def set_tags(prompt: Prompt, names: list[str]) -> None:
    pks = _tag_pks(names)
    prompt.tags.set([pks[n] for n in names])


def _tag_pks(names: Iterable[str]) -> dict[str, int]:
    """{name: Tag pk} for these names, creating the tags that are missing."""
    wanted = set(names)
    existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "pk"))
    missing = [Tag(name=name) for name in sorted(wanted - set(existing))]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = dict(Tag.objects.filter(name__in=wanted).values_list("name", "pk"))
    return existing


def get_prompt(prompt_id: Any) -> Prompt:
    try:
        return Prompt.objects.get(pk=prompt_id)
    except (Prompt.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"No prompt with id {prompt_id}.") from None


def _check_choices(values: dict[str, Any]) -> None:
    for field, choices in CHOICES.items():
        if field in values and values[field] not in choices.values:
            allowed = ", ".join(choices.values)
            raise Invalid(f"{field} must be one of: {allowed}; got {values[field]!r}.")


def _apply_embedding(prompt: Prompt, *, vector: Vector | None, embedder: str | None) -> None:
    """Set the prompt's embedding from a client vector, or compute it locally."""
    _embed_all([_Draft(prompt, [], None, None, vector, embedder)], where=lambda index: "")


def _clear_embedding(prompt: Prompt) -> None:
    if prompt.embedding_model:
        touch_space(model=prompt.embedding_model, dimensions=prompt.dimensions or 0)
    prompt.embedding = None
    prompt.dimensions = None
    prompt.embedding_model = ""
    prompt.embedding_provider = ""


def _resolve(prompt_id: Any, what: str) -> Prompt | None:
    return _resolve_all([(0, prompt_id, what)], where=lambda index: "").get((0, what))


def create_prompt(
    *,
    content: str,
    phase: str,
    provider: str,
    model: str,
    tags: Iterable[str] | str | None = None,
    parent_id: Any = None,
    variant_of_id: Any = None,
    vector: Vector | None = None,
    embedder: str | None = None,
    now: datetime.datetime | None = None,
    **fields: Any,
) -> Prompt:
    """Store a prompt with its hash, tags and embedding; a parent's generation_count grows."""
    draft = _draft(
        content=content, phase=phase, provider=provider, model=model, tags=tags,
        parent_id=parent_id, variant_of_id=variant_of_id, vector=vector, embedder=embedder,
        now=now, **fields,
    )  # fmt: skip
    with transaction.atomic():
        return _store_drafts([draft], where=lambda index: "")[0]


def create_prompts(*, items: list[dict[str, Any]]) -> list[Prompt]:
    """Create several prompts all-or-nothing; an error names the failing item.

    A batch costs a handful of queries whatever its size (parents, spaces and tags looked
    up once, prompts and tag links inserted in bulk): one prompt at a time cost nine round
    trips each, ~120 prompts/s on PostgreSQL.
    """
    drafts = []
    for index, item in enumerate(items):
        try:
            drafts.append(_draft(**item))
        except Invalid as exc:
            raise Invalid(f"item {index}: {exc.message}", **exc.details) from None
    with transaction.atomic():
        return _store_drafts(drafts, where=lambda index: f"item {index}: ")


@dataclass
class _Draft:
    """A validated, unsaved prompt and what is stored with it."""

    prompt: Prompt
    tags: list[str]
    parent_id: Any
    variant_of_id: Any
    vector: Vector | None
    embedder: str | None


def _draft(
    *,
    content: str,
    phase: str,
    provider: str,
    model: str,
    tags: Iterable[str] | str | None = None,
    parent_id: Any = None,
    variant_of_id: Any = None,
    vector: Vector | None = None,
    embedder: str | None = None,
    now: datetime.datetime | None = None,
    **fields: Any,
) -> _Draft:
    """Check one prompt's own values (nothing that needs the database) and build it."""
    if not content or not content.strip():
        raise Invalid("content must not be empty.")
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown prompt fields: {', '.join(sorted(unknown))}.")
    values = {"phase": phase, "provider": provider, "model": model, **fields}
    _check_choices(values)
    when = now or timezone.now()
    prompt = Prompt(
        content=content, content_hash=content_hash(content), created_at=when, updated_at=when,
        **values,
    )  # fmt: skip
    prompt.relevance_score = lifecycle.relevance(prompt, now=when)
    return _Draft(prompt, normalise_tags(tags), parent_id, variant_of_id, vector, embedder)


def _store_drafts(drafts: list[_Draft], *, where: Callable[[int], str]) -> list[Prompt]:
    """Resolve links, embed, insert and tag the drafts; call inside a transaction."""
    if not drafts:
        return []
    linked = _resolve_all(
        [
            (index, prompt_id, what)
            for index, draft in enumerate(drafts)
            for prompt_id, what in (
                (draft.parent_id, "parent"),
                (draft.variant_of_id, "variant_of"),
            )
        ],
        where=where,
    )
    for index, draft in enumerate(drafts):
        draft.prompt.parent = linked.get((index, "parent"))
        draft.prompt.variant_of = linked.get((index, "variant_of"))
    _embed_all(drafts, where=where)
    prompts = [draft.prompt for draft in drafts]
    Prompt.objects.bulk_create(prompts)
    tag_all(prompts, [draft.tags for draft in drafts])
    children = Counter(p.parent_id for p in prompts if p.parent_id is not None)
    for parent_pk, count in children.items():
        Prompt.objects.filter(pk=parent_pk).update(generation_count=F("generation_count") + count)
    return prompts


def _resolve_all(
    wanted: list[tuple[int, Any, str]], *, where: Callable[[int], str]
) -> dict[tuple[int, str], Prompt]:
    """The prompts that (item index, link name) pairs name, in one query."""
    keys: dict[tuple[int, str], tuple[Any, Any]] = {}  # → (as given, as a primary key)
    for index, prompt_id, what in wanted:
        if prompt_id in (None, ""):
            continue
        try:
            keys[index, what] = prompt_id, Prompt._meta.pk.to_python(prompt_id)
        except (ValidationError, ValueError, TypeError):
            raise Invalid(f"{where(index)}{what} {prompt_id} does not exist.") from None
    found = Prompt.objects.in_bulk({pk for _, pk in keys.values()}) if keys else {}
    linked = {}
    for (index, what), (prompt_id, pk) in keys.items():
        if pk not in found:
            raise Invalid(f"{where(index)}{what} {prompt_id} does not exist.")
        linked[index, what] = found[pk]
    return linked


def _embed_all(drafts: list[_Draft], *, where: Callable[[int], str]) -> None:
    """Client vectors checked against their space, the rest embedded per local embedder;
    each space touched once (its version moves once per batch, not once per prompt)."""
    spaces: dict[str, tuple[int, int]] = {}  # model → (dimensions, first item with it)
    local: dict[str | None, list[int]] = {}
    known: dict[str, int | None] = {}
    for index, draft in enumerate(drafts):
        prompt, vector = draft.prompt, draft.vector
        if vector is None:
            local.setdefault(draft.embedder, []).append(index)
            continue
        if vector.model not in known:
            known[vector.model] = space_dimensions(vector.model)
        try:
            values = parse_vector(vector.values, model=vector.model, dimensions=known[vector.model])
        except Invalid as exc:
            raise Invalid(f"{where(index)}{exc.message}", **exc.details) from None
        prompt.embedding = to_bytes(values)
        prompt.embedding_model, prompt.embedding_provider = vector.model, vector.provider
        prompt.dimensions = int(values.size)
    for name, indices in local.items():
        model = get_embedder(name)
        vectors = model.embed([drafts[i].prompt.content for i in indices])
        for index, values in zip(indices, vectors, strict=True):
            prompt = drafts[index].prompt
            prompt.embedding = to_bytes(values)
            prompt.embedding_model, prompt.embedding_provider = model.name, model.provider
            prompt.dimensions = model.dimensions
    for index, draft in enumerate(drafts):
        name, dimensions = draft.prompt.embedding_model, draft.prompt.dimensions
        first = spaces.setdefault(name, (dimensions, index))
        if first[0] != dimensions:
            raise Invalid(
                f"{where(index)}Embedding model {name!r} has {first[0]} dimensions "
                f"(item {first[1]}); got {dimensions}.",
                expected_dimensions=first[0],
                got_dimensions=dimensions,
            )
    for name, (dimensions, index) in spaces.items():
        try:
            touch_space(model=name, dimensions=dimensions)
        except Invalid as exc:
            raise Invalid(f"{where(index)}{exc.message}", **exc.details) from None


def tag_all(prompts: list[Prompt], names: list[list[str]]) -> None:
    """Link each new prompt to its tags (creating the missing ones) in bulk.

    For prompts with no tags yet (just created); each list names a tag once.
    """
    wanted = {name for tags in names for name in tags}
    if not wanted:
        return
    pks = _tag_pks(wanted)
    link = Prompt.tags.through
    link.objects.bulk_create(
        link(prompt_id=prompt.pk, tag_id=pks[name])
        for prompt, tags in zip(prompts, names, strict=True)
        for name in tags
    )


def update_prompt(
    *,
    prompt: Prompt,
    content: str | None = None,
    tags: Iterable[str] | str | None = None,
    parent_id: Any = ...,
    variant_of_id: Any = ...,
    vector: Vector | None = None,
    reason: str = "",
    updated_by: str = "",
    now: datetime.datetime | None = None,
    **fields: Any,
) -> Prompt:
    """Change a prompt; new content writes history and recomputes hash and embedding."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(f"Unknown prompt fields: {', '.join(sorted(unknown))}.")
    _check_choices(fields)
    when = now or timezone.now()
    with transaction.atomic():
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        for field, value in fields.items():
            setattr(prompt, field, value)
        if parent_id is not ...:
            prompt.parent = _resolve(parent_id, "parent")
            if prompt.parent is not None and _is_descendant_or_self(prompt.parent, prompt):
                raise Invalid("A prompt cannot be its own ancestor.")
        if variant_of_id is not ...:
            prompt.variant_of = _resolve(variant_of_id, "variant_of")
        if content is not None and content != prompt.content:
            if not content.strip():
                raise Invalid("content must not be empty.")
            EnhancementHistory.objects.create(
                prompt=prompt,
                previous_content=prompt.content,
                updated_content=content,
                update_reason=reason,
                updated_by=updated_by,
                enhancement_method=fields.get("enhancement_method", prompt.enhancement_method),
                created_at=when,
            )
            prompt.content = content
            prompt.content_hash = content_hash(content)
            if vector is None:
                if prompt.embedding_model and not is_local_embedder(prompt.embedding_model):
                    # A client's vector can't be recomputed here; a stale one would mislead.
                    _clear_embedding(prompt)
                else:
                    _apply_embedding(prompt, vector=None, embedder=prompt.embedding_model or None)
        if vector is not None:
            old_model = prompt.embedding_model
            _apply_embedding(prompt, vector=vector, embedder=None)
            if old_model != vector.model:
                mark_changed([old_model])
        prompt.updated_at = when
        prompt.save()
        if tags is not None:
            set_tags(prompt, normalise_tags(tags))
    return prompt


def _is_descendant_or_self(candidate: Prompt, prompt: Prompt) -> bool:
    node_id = candidate.pk
    seen = set()
    while node_id is not None and node_id not in seen:
        if node_id == prompt.pk:
            return True
        seen.add(node_id)
        node_id = Prompt.objects.filter(pk=node_id).values_list("parent_id", flat=True).first()
    return False


def descendant_ids(prompt: Prompt) -> list[list]:
    """Ids of descendants, one list per generation (one query per generation)."""
    generations: list[list] = []
    frontier = [prompt.pk]
    seen = {prompt.pk}
    while frontier:
        children = [
            pk
            for pk in Prompt.objects.filter(parent_id__in=frontier).values_list("id", flat=True)
            if pk not in seen
        ]
        if not children:
            break
        seen.update(children)
        generations.append(children)
        frontier = children
    return generations


def delete_prompt(*, prompt: Prompt, children: ChildPolicy = "refuse") -> int:
    """Delete a prompt; returns how many prompts went. Children are refused unless told."""
    if children not in ("refuse", "reparent", "cascade"):
        raise Invalid("children must be one of: refuse, reparent, cascade.")
    with transaction.atomic():
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        generations = descendant_ids(prompt)
        direct = generations[0] if generations else []
        if direct and children == "refuse":
            raise Conflict(
                f"Prompt {prompt.pk} has {len(direct)} child prompt(s); delete with "
                "children=reparent to move them to its parent, or children=cascade to "
                "delete them too.",
                children=len(direct),
            )
        if children == "reparent" and direct:
            Prompt.objects.filter(pk__in=direct).update(parent=prompt.parent_id)
            if prompt.parent_id:
                Prompt.objects.filter(pk=prompt.parent_id).update(
                    generation_count=F("generation_count") + len(direct)
                )
            doomed = [prompt.pk]
        else:
            doomed = [prompt.pk] + [pk for gen in generations for pk in gen]
        models_touched = set(
            Prompt.objects.filter(pk__in=doomed)
            .exclude(embedding_model="")
            .values_list("embedding_model", flat=True)
        )
        # Deepest first, so no row is deleted while a child still points at it (PROTECT).
        for generation in reversed(generations if children == "cascade" else []):
            Prompt.objects.filter(pk__in=generation).delete()
        Prompt.objects.filter(pk=prompt.pk).delete()
        if prompt.parent_id:
            Prompt.objects.filter(pk=prompt.parent_id, generation_count__gt=0).update(
                generation_count=F("generation_count") - 1
            )
        mark_changed(models_touched)
    return len(doomed)


def add_metadata(
    *,
    prompt: Prompt,
    generation_model: str,
    generation_provider: str,
    processing_time: int,
    input_tokens: int,
    output_tokens: int,
    total_tokens: int | None = None,
    cost: float | None = None,
    now: datetime.datetime | None = None,
    **fields: Any,
) -> ModelMetadata:
    """Record one generation; cost comes from the price table when the caller gives none."""
    if total_tokens is None:
        total_tokens = input_tokens + output_tokens
    elif total_tokens != input_tokens + output_tokens:
        raise Invalid(
            f"total_tokens ({total_tokens}) must equal input_tokens + output_tokens "
            f"({input_tokens + output_tokens})."
        )
    if min(processing_time, input_tokens, output_tokens) < 0:
        raise Invalid("processing_time and token counts must not be negative.")
    if cost is None:
        cost = cost_for(
            provider=generation_provider,
            model=generation_model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
    with transaction.atomic():
        return ModelMetadata.objects.create(
            prompt=prompt,
            generation_model=generation_model,
            generation_provider=generation_provider,
            processing_time=processing_time,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total_tokens,
            cost=cost,
            created_at=now or timezone.now(),
            **fields,
        )


def add_metric(*, prompt: Prompt, now: datetime.datetime | None = None, **fields: Any) -> Metric:
    with transaction.atomic():
        return Metric.objects.create(prompt=prompt, created_at=now or timezone.now(), **fields)


def reembed(
    *, prompts: Iterable[Prompt], embedder: str | None = None, batch_size: int = 200
) -> Iterable[int]:
    """Recompute embeddings with a local embedder, yielding how many were done per batch."""
    model = get_embedder(embedder)
    batch: list[Prompt] = []

    def flush() -> int:
        vectors = model.embed([p.content for p in batch])
        with transaction.atomic():
            old = {p.embedding_model for p in batch if p.embedding_model}
            for p, vector in zip(batch, vectors, strict=True):
                p.embedding = to_bytes(np.asarray(vector))
                p.embedding_model = model.name
                p.embedding_provider = model.provider
                p.dimensions = model.dimensions
            fields = ["embedding", "embedding_model", "embedding_provider", "dimensions"]
            Prompt.objects.bulk_update(batch, fields)
            touch_space(model=model.name, dimensions=model.dimensions)
            mark_changed(old - {model.name})
        done = len(batch)
        batch.clear()
        return done

    for prompt in prompts:
        batch.append(prompt)
        if len(batch) >= batch_size:
            yield flush()
    if batch:
        yield flush()
