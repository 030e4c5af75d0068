"""Import promptfoo evals: output/export JSON (v3 envelope, older v2/v3), JSONL, promptfoo.db.

Everything goes through the write path (evals.prepare, then create_eval/store_prepared/
complete_eval) in batches, inside one transaction per eval, so a malformed record (named
by its position) leaves nothing behind. JSON is read once, a value at a time (evals.jsontext),
and its results handed on in batches as they are read, so memory stays bounded whatever
the file size;
what promptfoo writes after the results (config, metadata) updates the eval at the end,
inside the same transaction. The file is read and its batches prepared in a forked
second process while this one writes them (evals.forked): on the 2-core dev machine a
100,000-result export took 8.8 s in one process and 6.0 s in two (`make bench`, a slow day).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import ijson
from django.conf import settings
from django.db import transaction

from alchemy_site.errors import Conflict, Invalid
from evals import forked, services
from evals.jsontext import JsonSyntaxError, JsonText
from evals.models import Eval
from evals.prepare import PreparedBatch, prepare_results

# Results per add_results call: bigger batches cost less per result (one INSERT, one FTS
# statement, one aggregate UPDATE per prompt each) and ~5,000 parsed results stay small.
BATCH = 5000
Progress = Callable[[int], None]
SMALL_PREFIXES = {
    "evalId", "config", "metadata", "author", "createdAt", "description", "version",
    "timestamp", "prompts", "table.head", "results.version", "results.timestamp",
    "results.prompts", "results.stats", "results.table.head",
}  # fmt: skip


class ImportFailed(Exception):
    """The file can't be imported; the message names the record and what is wrong."""


@dataclass
class Imported:
    eval_id: str
    results: int
    skipped: int


@dataclass
class Header:
    eval_id: str | None
    created_at: datetime | None
    author: str
    description: str
    config: dict
    prompts: list[dict]
    version: int
    results_prefix: str
    legacy: dict | None


def parse_when(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        # promptfoo stores epoch milliseconds.
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def is_jsonl(path: Path) -> bool:
    """Several lines, the first one a complete JSON object.

    Never holds the first line in memory: a compact (one-line) export is one line of
    the whole file, and reading it whole cost twice the file size in peak memory.
    """
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    with path.open("rb") as handle:
        length = _first_line_length(handle)
        if length is None or not handle.read(64).strip():
            return False
        handle.seek(0)
        try:
            events = ijson.basic_parse(_Bounded(handle, length), use_float=True)
            first = next(events, None)
            if first is None or first[0] != "start_map":
                return False
            for _ in events:
                pass
        except ijson.JSONError:
            return False
    return True


def _first_line_length(handle: BinaryIO) -> int | None:
    """Bytes up to and including the first newline (the handle is left there), or None."""
    length = 0
    while chunk := handle.read(LINE_SCAN_CHUNK):
        newline = chunk.find(b"\n")
        if newline != -1:
            length += newline + 1
            handle.seek(length)
            return length
        length += len(chunk)
    return None


LINE_SCAN_CHUNK = 1 << 20


class _Bounded:
    """The first `limit` bytes of a binary file, for a streaming parser."""

    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self.handle, self.left = handle, limit

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data


def import_path(
    path: Path,
    *,
    new_id: bool = False,
    force: bool = False,
    eval_ids: list[str] | None = None,
    progress: Progress | None = None,
) -> list[Imported]:
    path = Path(path)
    if not path.is_file():
        raise ImportFailed(f"{path} is not a file.")
    if is_sqlite(path):
        return import_promptfoo_db(
            path, new_id=new_id, force=force, eval_ids=eval_ids, progress=progress
        )
    if is_jsonl(path):
        return [import_jsonl(path, new_id=new_id, force=force, progress=progress)]
    return [import_json(path, new_id=new_id, force=force, progress=progress)]


# --- JSON --------------------------------------------------------------------------------


def read_header(handle: BinaryIO) -> dict[str, Any]:
    """One streaming pass keeping only the small top-level parts (results are skipped)."""
    found: dict[str, Any] = {}
    results_kind = None
    builder, building = None, None
    for prefix, event, value in ijson.parse(handle, use_float=True):
        if building is not None:
            builder.event(event, value)
            if prefix == building and event in ("end_map", "end_array"):
                found[building] = builder.value
                building = None
            continue
        if prefix == "results" and event in ("start_map", "start_array"):
            results_kind = "map" if event == "start_map" else "array"
        if prefix in SMALL_PREFIXES and prefix not in found:
            if event in ("start_map", "start_array"):
                builder, building = ijson.ObjectBuilder(), prefix
                builder.event(event, value)
            elif event not in ("map_key", "end_map", "end_array"):
                found[prefix] = value
    found["_results_kind"] = results_kind
    return found


def header_from(found: dict[str, Any]) -> Header:
    metadata = found.get("metadata") if isinstance(found.get("metadata"), dict) else {}
    config = found.get("config") if isinstance(found.get("config"), dict) else {}
    nested = found["_results_kind"] == "map"
    prompts = found.get("results.prompts" if nested else "prompts")
    version = found.get("results.version" if nested else "version") or 3
    timestamp = found.get("results.timestamp" if nested else "timestamp")
    if nested:
        prefix = "results.results.item"
    elif found["_results_kind"] == "array":
        prefix = "results.item"
    else:
        raise ImportFailed("No results found: expected a promptfoo output/export file.")
    table_head = found.get("results.table.head" if nested else "table.head")
    return Header(
        eval_id=found.get("evalId"),
        created_at=parse_when(metadata.get("evaluationCreatedAt"))
        or parse_when(found.get("createdAt"))
        or parse_when(timestamp),
        author=str(metadata.get("author") or found.get("author") or ""),
        description=str(
            config.get("description")
            or metadata.get("description")
            or found.get("description")
            or ""
        ),
        config=config,
        prompts=prompts if isinstance(prompts, list) else [],
        version=int(version) if isinstance(version, int | float) else 3,
        results_prefix=prefix,
        legacy={"version": version, "table": {"head": table_head}} if table_head else None,
    )


def import_json(
    path: Path, *, new_id: bool = False, force: bool = False, progress: Progress | None = None
) -> Imported:
    def produce(send: forked.Send) -> None:
        try:
            with path.open("rb") as handle:
                if _first_byte(handle) != b"{":
                    # Not an object: no promptfoo file. The header pass says why (invalid
                    # JSON or no results) without building whatever the file holds.
                    header_from(read_header(handle))
                    raise ImportFailed("No results found: expected a promptfoo output/export file.")
                _JsonImport(path, _Messages(send, new_id=new_id)).run(handle)
        except (ijson.JSONError, JsonSyntaxError) as exc:
            raise ImportFailed(f"{path} is not valid JSON: {exc}") from None

    return _run(produce, force=force, progress=progress)


def _first_byte(handle: BinaryIO) -> bytes:
    while chunk := handle.read(LINE_SCAN_CHUNK):
        if stripped := chunk.lstrip():
            handle.seek(0)
            return stripped[:1]
    handle.seek(0)
    return b""


class _JsonImport:
    """One pass over an export JSON file, its results handed on in batches as they are read.

    The walk (evals.jsontext) goes into the root object, `results` (an object in promptfoo's
    v3 envelope, the results array itself in older files) and `table` (whose body, older
    files' second copy of the results, is read past an item at a time). The small parts —
    evalId, config, metadata, prompts, stats, … (SMALL_PREFIXES) — are kept; anything else
    is read and dropped.

    The eval is opened when the first batch is ready, from what precedes the results
    (evalId, prompts, timestamp, and config when it comes first). When the id or the
    prompts aren't there yet, one header pass over the file finds them (the old two-pass
    import). What the file holds after the results updates the eval at the end.
    """

    CONTAINERS = {"results", "table", "results.table"}
    RESULTS = {"results", "results.results"}
    SKIPPED = {"table.body", "results.table.body"}

    def __init__(self, path: Path, sink: _Messages) -> None:
        self.path, self.sink = path, sink
        self.size = min(BATCH, settings.RESULTS_BATCH_LIMIT)
        self.found: dict[str, Any] = {"_results_kind": None}
        self.pending: list = []

    def run(self, handle: BinaryIO) -> None:
        text = JsonText(handle)
        text.take("{")
        self._members(text, "")
        text.end()
        header = header_from(self.found)
        if not self.sink.opened:
            self.sink.open(header)
        self._flush(everything=True)
        self.sink.finish(header)

    def _members(self, text: JsonText, prefix: str) -> None:
        for key in text.members():
            path = f"{prefix}.{key}" if prefix else key
            kind = text.peek()
            if path in self.RESULTS and kind == "[":
                if path == "results":
                    self.found["_results_kind"] = "array"
                text.take("[")
                for result in text.elements():
                    self.pending.append(result)
                    self._flush(everything=False)
            elif path in self.CONTAINERS and kind == "{":
                if path == "results":
                    self.found["_results_kind"] = "map"
                text.take("{")
                self._members(text, path)
            elif path in self.SKIPPED and kind == "[":
                text.take("[")
                for _ in text.elements():
                    pass
            else:
                value = text.value()
                if path in SMALL_PREFIXES:
                    self.found[path] = value

    def _flush(self, *, everything: bool) -> None:
        while len(self.pending) >= self.size or (everything and self.pending):
            if not self.sink.opened:
                self.sink.open(self._early_header())
            batch = self.pending[: self.size]
            del self.pending[: self.size]
            self.sink.add(batch)

    def _early_header(self) -> Header:
        found = self.found
        prompts_key = "results.prompts" if found["_results_kind"] == "map" else "prompts"
        if (not self.sink.new_id and "evalId" not in found) or prompts_key not in found:
            with self.path.open("rb") as handle:
                found = read_header(handle)
        return header_from(found)


def import_jsonl(
    path: Path, *, new_id: bool = False, force: bool = False, progress: Progress | None = None
) -> Imported:
    def lines() -> Iterator[dict]:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ImportFailed(f"{path} line {number} is not valid JSON: {exc}") from None

    def produce(send: forked.Send) -> None:
        records = lines()
        first = next(records, None)
        if first is None:
            raise ImportFailed(f"{path} holds no results.")
        header = Header(
            eval_id=first.get("evalId") if isinstance(first, dict) else None,
            created_at=None,
            author="",
            description=f"Imported from {path.name}",
            config={},
            prompts=[],
            version=4,
            results_prefix="",
            legacy=None,
        )
        _stream(header, _chain([first], records), _Messages(send, new_id=new_id))

    return _run(produce, force=force, progress=progress)


def _chain(head: list, tail: Iterable) -> Iterator:
    yield from head
    yield from tail


# --- promptfoo.db ------------------------------------------------------------------------


def import_promptfoo_db(
    path: Path,
    *,
    new_id: bool = False,
    force: bool = False,
    eval_ids: list[str] | None = None,
    progress: Progress | None = None,
) -> list[Imported]:
    with _readable(path) as source:
        ids = [row["id"] for row in source.execute("SELECT id FROM evals ORDER BY created_at")]
    if eval_ids:
        missing = [i for i in eval_ids if i not in ids]
        if missing:
            raise ImportFailed(f"{path} has no eval {missing[0]!r}.")
        ids = [i for i in ids if i in eval_ids]
    return [
        _import_db_eval(path, eval_id, new_id=new_id, force=force, progress=progress)
        for eval_id in ids
    ]


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a promptfoo database; its errors say the file is unreadable."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    source.row_factory = sqlite3.Row
    try:
        yield source
    except sqlite3.DatabaseError as exc:
        raise ImportFailed(f"{path} is not a readable promptfoo database: {exc}") from None
    finally:
        source.close()


def _import_db_eval(
    path: Path, eval_id: str, *, new_id: bool, force: bool, progress: Progress | None
) -> Imported:
    def produce(send: forked.Send) -> None:
        # Its own connection: this may run in a forked process, where the parent's isn't
        # safe to use.
        with _readable(path) as source:
            header, results = _db_eval(source, eval_id)
            _stream(header, results, _Messages(send, new_id=new_id))

    return _run(produce, force=force, progress=progress)


def _loads(value: Any, default: Any = None) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def _db_eval(source: sqlite3.Connection, eval_id: str) -> tuple[Header, Iterable[dict]]:
    """One eval of a promptfoo database: its header, and its results as they are read."""
    row = source.execute("SELECT * FROM evals WHERE id = ?", [eval_id]).fetchone()
    keys = row.keys()
    legacy = _loads(row["results"], {}) if "results" in keys else {}
    config = _loads(row["config"], {}) or {}
    tags = {}
    with contextlib.suppress(sqlite3.DatabaseError):
        tags = {
            t["name"]: t["value"]
            for t in source.execute(
                "SELECT tags.name, tags.value FROM tags JOIN evals_to_tags ON tags.id = "
                "evals_to_tags.tag_id WHERE evals_to_tags.eval_id = ?",
                [eval_id],
            )
        }
    if tags:
        config = {**config, "tags": {**tags, **(config.get("tags") or {})}}
    prompts = _loads(row["prompts"], None) if "prompts" in keys else None
    if not prompts and isinstance(legacy, dict):
        prompts = legacy.get("prompts") or []
    header = Header(
        eval_id=eval_id,
        created_at=parse_when(row["created_at"]),
        author=row["author"] or "" if "author" in keys else "",
        description=(row["description"] if "description" in keys else "")
        or config.get("description")
        or "",
        config=config,
        prompts=prompts or [],
        version=4,
        results_prefix="",
        legacy=None,
    )
    has_rows = source.execute(
        "SELECT 1 FROM eval_results WHERE eval_id = ? LIMIT 1", [eval_id]
    ).fetchone()
    if has_rows:
        results: Iterable[dict] = _db_results(source, eval_id)
    else:
        header.version = 3
        header.legacy = (
            {k: v for k, v in legacy.items() if k != "results"}
            if isinstance(legacy, dict)
            else None
        )
        results = legacy.get("results", []) if isinstance(legacy, dict) else []
    return header, results


DB_COLUMNS = {
    "prompt_idx": "promptIdx", "test_idx": "testIdx", "latency_ms": "latencyMs", "cost": "cost",
    "error": "error", "failure_reason": "failureReason", "score": "score",
}  # fmt: skip
DB_JSON_COLUMNS = {
    "test_case": "testCase", "prompt": "prompt", "provider": "provider", "response": "response",
    "grading_result": "gradingResult", "named_scores": "namedScores", "metadata": "metadata",
}  # fmt: skip


def _db_results(source: sqlite3.Connection, eval_id: str) -> Iterator[dict]:
    cursor = source.execute(
        "SELECT * FROM eval_results WHERE eval_id = ? ORDER BY test_idx, prompt_idx", [eval_id]
    )
    for row in cursor:
        keys = row.keys()
        out: dict[str, Any] = {camel: row[col] for col, camel in DB_COLUMNS.items() if col in keys}
        for col, camel in DB_JSON_COLUMNS.items():
            if col in keys:
                out[camel] = _loads(row[col])
        out["success"] = bool(row["success"]) if "success" in keys else False
        yield {k: v for k, v in out.items() if v is not None}


# --- shared ------------------------------------------------------------------------------


class _LegacyIndices:
    """v2/v3 results may lack promptIdx/testIdx: derive them from the prompt and the vars."""

    def __init__(self, prompts: list[dict]) -> None:
        self.prompt_keys = {
            (p.get("raw"), str(p.get("provider") or "")): i for i, p in enumerate(prompts)
        }
        self.tests: dict[str, int] = {}

    def __call__(self, batch: list) -> list:
        for position, result in enumerate(batch):
            if isinstance(result, dict) and ("promptIdx" not in result or "testIdx" not in result):
                batch[position] = self._indexed(result)
        return batch

    def _indexed(self, result: dict) -> dict:
        result = dict(result)
        prompt = result.get("prompt") or {}
        provider = result.get("provider") or {}
        provider_id = provider.get("id") if isinstance(provider, dict) else provider
        raw = prompt.get("raw") if isinstance(prompt, dict) else prompt
        key = (raw, str(provider_id or ""))
        if key not in self.prompt_keys:
            self.prompt_keys[key] = len(self.prompt_keys)
        vars_key = json.dumps(result.get("vars") or {}, sort_keys=True)
        result.setdefault("promptIdx", self.prompt_keys[key])
        result.setdefault("testIdx", self.tests.setdefault(vars_key, len(self.tests)))
        return result


def _prompts_from(batch: list[dict]) -> list[dict]:
    by_idx: dict[int, dict] = {}
    for result in batch:
        if not isinstance(result, dict) or not isinstance(result.get("promptIdx"), int):
            continue
        prompt = result.get("prompt") or {}
        provider = result.get("provider") or {}
        by_idx.setdefault(
            result["promptIdx"],
            {
                "raw": (prompt.get("raw") if isinstance(prompt, dict) else str(prompt)) or "",
                "label": (prompt.get("label") if isinstance(prompt, dict) else None) or "",
                "provider": provider.get("id") if isinstance(provider, dict) else provider or "",
            },
        )
    if not by_idx:
        return []
    return [by_idx.get(i, {"raw": "", "label": ""}) for i in range(max(by_idx) + 1)]


def _stream(header: Header, results: Iterable[dict], sink: _Messages) -> None:
    """Hand a file's results to `sink` in batches, its header first."""
    results = iter(results)
    size = min(BATCH, settings.RESULTS_BATCH_LIMIT)
    sink.open(header)
    while batch := list(islice(results, size)):
        sink.add(batch)
    sink.finish(header)


# An import is two halves: the file's side (read it, prepare each batch: pure Python) and
# the database's side (create the eval, store the batches, complete it). `produce` runs
# the first and sends messages; `_Writer` takes them: in a second process when one can be
# forked (evals.forked), so the two halves run side by side, or in this one.


def _run(
    produce: Callable[[forked.Send], None], *, force: bool, progress: Progress | None
) -> Imported:
    """Run one eval's import: `produce` reads the file and sends `_Messages`' messages.

    The eval is written in one transaction, opened with the first message: a malformed
    record or invalid JSON anywhere in the file rolls back everything.
    """
    with contextlib.ExitStack() as stack:
        writer = _Writer(stack, force=force, progress=progress)
        forked.run(
            produce, writer.take, forked=settings.IMPORT_READER_PROCESS and forked.available()
        )
        assert writer.imported is not None, "the reader finished without its last message"
        return writer.imported


class _Messages:
    """What a file's reader calls (`open`, `add` per batch, `finish`), sent on as messages:
    ("open", header, eval id), ("batch", prepared batch, prompts of the first batch) and
    ("finish", header)."""

    def __init__(self, send: forked.Send, *, new_id: bool) -> None:
        self.send, self.new_id = send, new_id
        self.reader: _Reader | None = None

    @property
    def opened(self) -> bool:
        return self.reader is not None

    def open(self, header: Header) -> None:
        self.reader = _Reader(header, new_id=self.new_id)
        self.send(("open", header, self.reader.eval_id))

    def add(self, batch: list[dict]) -> None:
        assert self.reader is not None
        self.send(("batch", *self.reader.prepare(batch)))

    def finish(self, header: Header) -> None:
        if self.reader is None:
            self.open(header)
        self.send(("finish", header))


class _Reader:
    """The file's side of one eval's import: its id, the results' indices where older
    files leave them out, and each batch validated and prepared (evals.prepare).

    A malformed result is named by its position in the file."""

    def __init__(self, header: Header, *, new_id: bool) -> None:
        self.header = header
        self.eval_id = header.eval_id
        if new_id or not self.eval_id:
            self.eval_id = services.new_eval_id(header.created_at)
        self.legacy = _LegacyIndices(header.prompts)
        self.position = 0

    def prepare(self, batch: list[dict]) -> tuple[PreparedBatch, list[dict] | None]:
        """The prepared batch, and for the first one the prompts it shows (the eval's when
        the header lists none)."""
        batch = self.legacy(batch)
        prompts = _prompts_from(batch) if self.position == 0 and not self.header.prompts else None
        try:
            prepared = prepare_results(batch)
        except Invalid as exc:
            index = exc.details.get("index")
            where = f"result #{self.position + index}" if index is not None else "a result"
            raise ImportFailed(f"Eval {self.eval_id}: {where}: {exc.message}") from None
        self.position += len(batch)
        return prepared, prompts


class _Writer:
    """The database's side: creates the eval (with the first batch in hand: its prompts
    may come from it), stores each prepared batch and completes the eval; `finish` brings
    what the header learnt since up to date. Opens the eval's transaction on `stack`."""

    def __init__(
        self, stack: contextlib.ExitStack, *, force: bool, progress: Progress | None
    ) -> None:
        self.stack, self.force, self.progress = stack, force, progress
        self.header: Header | None = None
        self.eval_id = ""
        self.eval_: Eval | None = None
        self.created_with: dict[str, Any] = {}
        self.stored = self.skipped = self.position = 0
        self.imported: Imported | None = None

    def take(self, message: tuple) -> None:
        kind, *args = message
        if kind == "open":
            self.header, self.eval_id = args
            self.stack.enter_context(transaction.atomic())
        elif kind == "batch":
            self.add(*args)
        else:
            self.imported = self.finish(*args)

    def _create(self, prompts_seen: list[dict]) -> Eval:
        assert self.header is not None
        header = self.header
        existing = Eval.objects.filter(pk=self.eval_id).first()
        if existing is not None:
            if not self.force:
                raise ImportFailed(
                    f"Eval {self.eval_id} is already imported; use --new-id to import a copy "
                    "or --force to replace it."
                )
            services.delete_eval(eval=existing)
        prompts = header.prompts or prompts_seen
        self.created_with = _described_by(header)
        try:
            return services.create_eval(
                prompts=[p for p in prompts if isinstance(p, dict)],
                id=self.eval_id,
                **self.created_with,
            )
        except (Invalid, Conflict) as exc:
            raise ImportFailed(f"Eval {self.eval_id}: {exc.message}") from None

    def add(self, batch: PreparedBatch, prompts: list[dict] | None) -> None:
        if self.eval_ is None:
            self.eval_ = self._create(prompts or [])
        outcome = services.store_prepared(eval=self.eval_, batch=batch)
        self.stored += outcome.stored
        self.skipped += outcome.skipped
        self.position += batch.received
        if self.progress:
            self.progress(self.position)

    def finish(self, header: Header) -> Imported:
        if self.eval_ is None:
            self.eval_ = self._create([])
        described = _described_by(header)
        if described != self.created_with:
            if described["created_at"] is None:
                described["created_at"] = self.created_with["created_at"]
            try:
                services.update_eval_header(eval=self.eval_, **described)
            except Invalid as exc:
                raise ImportFailed(f"Eval {self.eval_id}: {exc.message}") from None
        if header.legacy is not None:
            Eval.objects.filter(pk=self.eval_id).update(
                legacy_results=header.legacy, version=header.version
            )
        # No outcomes snapshot: it would be the import's peak memory (complete_eval).
        services.complete_eval(eval=self.eval_, status="complete", snapshot=False)
        return Imported(eval_id=self.eval_id, results=self.stored, skipped=self.skipped)


def _described_by(header: Header) -> dict[str, Any]:
    """create_eval's (and update_eval_header's) arguments that the header determines."""
    tests = header.config.get("tests")
    tests = tests if isinstance(tests, list) and all(isinstance(t, dict) for t in tests) else None
    tags = header.config.get("tags") if isinstance(header.config.get("tags"), dict) else None
    return {
        "config": header.config,
        "tests": tests,
        "tags": {str(k): "" if v is None else str(v) for k, v in (tags or {}).items()},
        "author": header.author,
        "description": header.description,
        "created_at": header.created_at,
        "is_redteam": "redteam" in header.config,
    }
