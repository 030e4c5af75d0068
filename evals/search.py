"""Free-text search over results: the output, the values of vars and metadata, the grading
reason and the error.

The write path stores that text with each result, lower-cased (`search_text`, computed by
evals.prepare.search_text), and both vendors index the column:

SQLite: an FTS5 external-content table over it (trigram tokenizer, `detail=none`); the
write path keeps it in step (`index_results_after` / `unindex_results` / `unindex_eval`).
The index keeps no positions, so a needle of three or more characters finds the rows
holding all of its trigrams and each of those is then checked for the needle itself: an
exact substring match, as a phrase query on positions would give.
PostgreSQL: a pg_trgm GIN index on the column, maintained by PostgreSQL.
Both are created by migration 0011. The user's text is always a bound parameter, lower-cased
as the stored text is.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

FTS_TABLE = "evals_result_fts"
TABLE = "evals_evalresult"
COLUMN = "search_text"


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def _index_rows(where: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}(rowid, {COLUMN}) SELECT id, {COLUMN} FROM {TABLE} "
            f"WHERE {where}",
            params,
        )


def _unindex_rows(where: str, params: list) -> None:
    # External content: the index removes exactly the text it was given, read back from
    # the row before the row changes or goes.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, {COLUMN}) "
            f"SELECT 'delete', id, {COLUMN} FROM {TABLE} WHERE {where}",
            params,
        )


def index_results(*, eval_id: str, results: Iterable) -> None:
    """Add freshly written rows to the FTS index (SQLite; PostgreSQL indexes by itself)."""
    if not _sqlite():
        return
    ids = [r.pk for r in results if r.pk is not None]
    if ids:
        # `+eval_id` keeps SQLite on the rowid range: with the plain column it picks an
        # (eval_id, …) index and walks every row the eval already has, once per batch.
        _index_rows("id BETWEEN %s AND %s AND +eval_id = %s", [min(ids), max(ids), eval_id])


def last_indexed_id() -> int | None:
    """The highest result id before a batch is inserted (SQLite; None elsewhere).

    Result ids are AUTOINCREMENT and a batch is inserted under the write lock, so every
    row above this id afterwards is the batch's: `index_results_after` indexes them.
    """
    if not _sqlite():
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {TABLE}")
        return cursor.fetchone()[0]


def index_results_after(*, eval_id: str, after_id: int | None) -> None:
    """Index, in one statement, the results inserted since `last_indexed_id` returned."""
    if _sqlite() and after_id is not None:
        _index_rows("id > %s AND +eval_id = %s", [after_id, eval_id])


def unindex_results(*, eval_id: str, ids: list[int]) -> None:
    """Remove rows from the FTS index; call before the rows change or disappear."""
    if _sqlite() and ids:
        _unindex_rows(f"eval_id = %s AND id IN ({', '.join(['%s'] * len(ids))})", [eval_id, *ids])


def unindex_eval(*, eval_id: str) -> None:
    if _sqlite():
        _unindex_rows("eval_id = %s", [eval_id])


def rebuild() -> None:
    """Recompute the whole index from the results (for `db` maintenance)."""
    if _sqlite():
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def optimize() -> None:
    """Merge the index's segments into one (SQLite; `manage.py db analyze` runs it).

    Writers merge lazily (automerge 16, migration 0011), so a search may read a few
    segments per level; after this it reads one.
    """
    if _sqlite():
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def needle(text: str) -> str:
    """The user's text as the stored text is: stripped and lower-cased."""
    return text.strip().lower()


def uses_fts(text: str) -> bool:
    return _sqlite() and len(needle(text)) >= 3


def eval_q(eval_id: str, text: str) -> Q:
    """The eval condition to pair with `search_q(text)`.

    With FTS, `+eval_id` (no index on it) makes SQLite start from the matching rowids and
    look each up by primary key; on the plain column it walks every row of the eval and
    probes the match list (~1 s at 1M results for a needle in 1 row of 200).
    """
    if not uses_fts(text):
        return Q(eval_id=eval_id)
    return Q(RawSQL(f'+"{TABLE}"."eval_id" = %s', [eval_id], output_field=BooleanField()))


# Enough trigrams to make the candidates few; each more is one more posting list to merge.
MAX_TRIGRAMS = 16


def fts_query(text: str) -> str:
    """An FTS5 query for the rows whose text holds every trigram of `text` (≥ 3 chars).

    Past MAX_TRIGRAMS, evenly spaced ones (the first and the last included) stand for the
    rest; the candidates are checked against the whole needle anyway.
    """
    text = needle(text)
    grams = list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))
    if len(grams) > MAX_TRIGRAMS:
        step = (len(grams) - 1) / (MAX_TRIGRAMS - 1)
        grams = [grams[round(n * step)] for n in range(MAX_TRIGRAMS)]
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def search_q(text: str) -> Q:
    """A condition on EvalResult matching rows whose searchable text contains `text`."""
    text = needle(text)
    if not text:
        return Q()
    column = f'"{TABLE}"."{COLUMN}"'
    if not _sqlite():
        like = RawSQL(f"{column} LIKE %s", ["%" + _like_escape(text) + "%"], BooleanField())
        return Q(like)
    contains = Q(RawSQL(f"instr({column}, %s) > 0", [text], output_field=BooleanField()))
    if len(text) < 3:  # trigrams need three characters; shorter needles scan (one eval)
        return contains
    candidates = Q(
        id__in=RawSQL(
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [fts_query(text)]
        )
    )
    if len(text) == 3:  # one trigram: every candidate holds the needle
        return candidates
    return candidates & contains
