"""Export and import of every prompts table, ids, lineage and embeddings included.

Formats:
- json: one document {"format": "alchemy-prompts", "version": 1, "tables": {table: [rows]}}
- jsonl: a header line, then one {"table": …, "row": {…}} object per line.
Embeddings travel as base64 float32 bytes. Import validates every record first and
writes in one transaction, so a bad file reports where it is wrong and stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any, Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from alchemy_site.errors import Conflict, Invalid
from prompts.embeddings import touch_space
from prompts.models import (
    EnhancementHistory,
    LearningPattern,
    Metric,
    ModelMetadata,
    ModelPrice,
    Prompt,
    UserFeedback,
)
from prompts.services import set_tags, tag_all

FORMAT = "alchemy-prompts"
VERSION = 1
OnConflict = Literal["skip", "update", "fail"]

# Export order is insertion order: prompts before the rows that point at them.
TABLES: dict[str, type[models.Model]] = {
    "prompts": Prompt,
    "model_metadata": ModelMetadata,
    "metrics": Metric,
    "enhancement_history": EnhancementHistory,
    "user_feedback": UserFeedback,
    "learning_patterns": LearningPattern,
    "model_prices": ModelPrice,
}
# Rows matched on these fields rather than the id (they are unique by meaning).
NATURAL_KEYS = {
    "learning_patterns": ("pattern_type", "pattern_key"),
    "model_prices": ("provider", "model", "effective_from"),
}
SINCE_FIELD = {"learning_patterns": "updated_at"}
# Not tied to one prompt.
SHARED_TABLES = {"learning_patterns", "model_prices"}


def _fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields]


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "hex") and type(value).__name__ == "UUID":
        return str(value)
    return value


def serialise(obj: models.Model, *, tags: list[str] | None = None) -> dict[str, Any]:
    row = {f.attname: _encode(getattr(obj, f.attname)) for f in _fields(type(obj))}
    if tags is not None:
        row["tags"] = tags
    return row


def iter_rows(
    *, since: datetime.datetime | None = None, prompt_ids: list | None = None
) -> Iterator[tuple[str, dict]]:
    """(table, row) pairs for the registry: everything, prompts created since `since`,
    or just `prompt_ids` with their rows (then without patterns and prices)."""
    selected = Prompt.objects.all()
    if since is not None:
        selected = selected.filter(created_at__gte=since)
    if prompt_ids is not None:
        selected = selected.filter(pk__in=prompt_ids)
    narrowed = since is not None or prompt_ids is not None
    for table, model in TABLES.items():
        queryset = model.objects.order_by("pk")
        if model is Prompt:
            queryset = selected.order_by("pk").prefetch_related("tags")
        elif table in SHARED_TABLES:
            if prompt_ids is not None:
                continue
            if since is not None and table in SINCE_FIELD:
                queryset = queryset.filter(**{f"{SINCE_FIELD[table]}__gte": since})
        elif narrowed:
            queryset = queryset.filter(prompt_id__in=selected.values("id"))
        if model is Prompt:
            for obj in queryset.iterator(chunk_size=500):
                yield table, serialise(obj, tags=[t.name for t in obj.tags.all()])
        else:
            for obj in queryset.iterator(chunk_size=2000):
                yield table, serialise(obj)


def export(
    *, out: IO[str], fmt: Literal["json", "jsonl"], since=None, prompt_ids: list | None = None
) -> dict[str, int]:
    """Write the registry to `out`; returns rows written per table."""
    counts = dict.fromkeys(TABLES, 0)
    header = {"format": FORMAT, "version": VERSION}
    rows = iter_rows(since=since, prompt_ids=prompt_ids)
    if fmt == "jsonl":
        out.write(json.dumps(header) + "\n")
        for table, row in rows:
            out.write(json.dumps({"table": table, "row": row}) + "\n")
            counts[table] += 1
        return counts
    tables: dict[str, list] = {name: [] for name in TABLES}
    for table, row in rows:
        tables[table].append(row)
        counts[table] += 1
    json.dump({**header, "tables": tables}, out)
    out.write("\n")
    return counts


@dataclass
class Record:
    where: str  # "line 12" or "prompts[3]", for error messages
    table: str
    row: dict[str, Any]


def read_records(stream: IO[str]) -> list[Record]:
    """Parse a json or jsonl export; any problem is Invalid naming the line or record."""
    text = stream.read()
    stripped = text.lstrip()
    if not stripped:
        raise Invalid("The file is empty.")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "tables" in document:
        _check_header(document, where="the document")
        tables = document["tables"]
        if not isinstance(tables, dict):
            raise Invalid("`tables` must be an object of table name → list of rows.")
        records = []
        for table, rows in tables.items():
            if not isinstance(rows, list):
                raise Invalid(f"tables.{table} must be a list.")
            records += [Record(f"{table}[{i}]", table, row) for i, row in enumerate(rows)]
        return records
    return _read_jsonl(text)


def _read_jsonl(text: str) -> list[Record]:
    records = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Invalid(f"line {number}: not valid JSON ({exc.msg}).") from None
        if not isinstance(item, dict):
            raise Invalid(f"line {number}: expected a JSON object.")
        if not records and "format" in item:
            _check_header(item, where=f"line {number}")
            records.append(None)  # header seen
            continue
        if "table" not in item or "row" not in item:
            raise Invalid(f'line {number}: expected {{"table": …, "row": {{…}}}}.')
        records.append(Record(f"line {number}", item["table"], item["row"]))
    if not records or records[0] is not None:
        raise Invalid(f"line 1: missing the {FORMAT!r} header; is this an Alchemy prompts export?")
    return records[1:]


def _check_header(header: dict, *, where: str) -> None:
    if header.get("format") != FORMAT:
        raise Invalid(f"{where}: format is {header.get('format')!r}, expected {FORMAT!r}.")
    if header.get("version") != VERSION:
        raise Invalid(
            f"{where}: version {header.get('version')!r} is not supported (want {VERSION})."
        )


@dataclass
class ImportReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def _build(record: Record) -> tuple[models.Model, list[str] | None]:
    model = TABLES.get(record.table)
    if model is None:
        raise Invalid(f"{record.where}: unknown table {record.table!r}.")
    if not isinstance(record.row, dict):
        raise Invalid(f"{record.where}: a row must be an object.")
    row = dict(record.row)
    tags = row.pop("tags", None) if model is Prompt else None
    names = {f.attname: f for f in _fields(model)}
    unknown = set(row) - set(names)
    if unknown:
        raise Invalid(f"{record.where}: unknown fields {', '.join(sorted(unknown))}.")
    values = {}
    for attname, value in row.items():
        fld = names[attname]
        if isinstance(fld, models.BinaryField) and value is not None:
            try:
                value = base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError):
                raise Invalid(f"{record.where}: {attname} is not base64.") from None
        values[attname] = value
    obj = model(**values)
    try:
        # Field types and choices, before anything is written. The CHECK constraints are
        # the database's to enforce (a query per constraint per row here made an import
        # ~30 queries a prompt); when it refuses one, _violation names the record.
        obj.clean_fields(exclude=[f.name for f in _fields(model) if f.is_relation])
    except ValidationError as exc:
        raise Invalid(f"{record.where}: {_detail(exc)}") from None
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        raise Invalid(f"{record.where}: tags must be a list of strings.")
    return obj, tags


def _existing(table: str, model, objs: list[models.Model]) -> dict[Any, models.Model]:
    keys = NATURAL_KEYS.get(table)
    if keys is None:
        found = model.objects.in_bulk([o.pk for o in objs if o.pk is not None])
        return {pk: row for pk, row in found.items()}
    found = {}
    for obj in objs:
        match = model.objects.filter(**{k: getattr(obj, k) for k in keys}).first()
        if match is not None:
            found[_key(table, obj)] = match
    return found


def _key(table: str, obj: models.Model):
    keys = NATURAL_KEYS.get(table)
    return obj.pk if keys is None else tuple(str(getattr(obj, k)) for k in keys)


def _same(a: models.Model, b: models.Model) -> bool:
    skip = {"id"}
    return all(
        _encode(getattr(a, f.attname)) == _encode(getattr(b, f.attname))
        for f in _fields(type(a))
        if f.attname not in skip
    )


def import_records(
    *, records: Iterable[Record], on_conflict: OnConflict = "fail", dry_run: bool = False
) -> ImportReport:
    """Validate everything, then write it all in one transaction (or nothing)."""
    built: dict[str, list[tuple[Record, models.Model, list[str] | None]]] = {t: [] for t in TABLES}
    for record in records:
        obj, tags = _build(record)
        built[record.table].append((record, obj, tags))
    _check_references(built)
    report = ImportReport()
    try:
        with transaction.atomic():
            for table, items in built.items():
                _write_table(table, items, on_conflict=on_conflict, report=report)
            _rebuild_spaces(built["prompts"])
            if dry_run:
                transaction.set_rollback(True)
    except IntegrityError as exc:
        violation = _violation(built)
        if violation is not None:
            raise Invalid(violation) from None
        raise Invalid(f"The database refused the import, nothing was written: {exc}") from None
    return report


def _violation(built) -> str | None:
    """The first record that breaks one of its table's CHECK constraints, and how."""
    for items in built.values():
        for record, obj, _ in items:
            model = type(obj)
            for constraint in model._meta.constraints:
                # Uniqueness is a conflict, decided by --on-conflict.
                if isinstance(constraint, models.CheckConstraint):
                    try:
                        constraint.validate(model, obj)
                    except ValidationError as exc:
                        return f"{record.where}: {_detail(exc)}"
    return None


def _detail(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _check_references(built) -> None:
    prompt_ids = {str(obj.pk) for _, obj, _ in built["prompts"]}
    wanted: dict[str, str] = {}
    for items in built.values():
        for record, obj, _ in items:
            for attname in ("prompt_id", "parent_id", "variant_of_id"):
                ref = getattr(obj, attname, None)
                if ref is not None and str(ref) not in prompt_ids:
                    wanted.setdefault(str(ref), f"{record.where}: {attname} {ref}")
    if wanted:
        present = {
            str(pk)
            for pk in Prompt.objects.filter(pk__in=list(wanted)).values_list("pk", flat=True)
        }
        missing = [where for ref, where in wanted.items() if ref not in present]
        if missing:
            raise Invalid(f"{missing[0]} is neither in the file nor in the database.")


def _write_table(table, items, *, on_conflict: OnConflict, report: ImportReport) -> None:
    model = TABLES[table]
    existing = _existing(table, model, [obj for _, obj, _ in items])
    created = updated = skipped = 0
    new_objs, new_tags = [], []
    for record, obj, tags in items:
        current = existing.get(_key(table, obj))
        if current is None:
            new_objs.append(obj)
            new_tags.append(tags)
            continue
        if _same(obj, current) or on_conflict == "skip":
            skipped += 1
            continue
        if on_conflict == "fail":
            raise Conflict(
                f"{record.where}: {table} row {_key(table, obj)} already exists and differs; "
                "use --on-conflict skip or update."
            )
        obj.pk = current.pk
        obj.save(force_update=True)
        if tags is not None:
            set_tags(obj, tags)
        updated += 1
    model.objects.bulk_create(new_objs, batch_size=500)
    created = len(new_objs)
    tagged = [
        (obj, list(dict.fromkeys(tags)))
        for obj, tags in zip(new_objs, new_tags, strict=True)
        if tags
    ]
    if tagged:
        tag_all([obj for obj, _ in tagged], [tags for _, tags in tagged])
    report.created[table] = created
    report.updated[table] = updated
    report.skipped[table] = skipped


def _rebuild_spaces(prompt_items) -> None:
    """Make every imported vector model a known space and invalidate its cached matrix."""
    spaces: dict[str, int] = {}
    for record, obj, _ in prompt_items:
        if not (obj.embedding_model and obj.dimensions):
            continue
        if spaces.setdefault(obj.embedding_model, obj.dimensions) != obj.dimensions:
            raise Invalid(
                f"{record.where}: {obj.embedding_model} vectors have "
                f"{spaces[obj.embedding_model]} dimensions elsewhere in the file, not {obj.dimensions}."
            )
    for model_name, dims in spaces.items():
        touch_space(model=model_name, dimensions=dims)
