"""Free-text search over results: response output, vars, grading reason, metadata, error.

SQLite: an FTS5 external-content table (trigram tokenizer, `detail=none`) over the view
`evals_result_search`; the write path keeps it in step (`index_results_after` /
`unindex_results` / `unindex_eval`). The index keeps no positions, so a needle of three
or more characters finds the rows holding all of its trigrams and each of those is then
checked for the needle itself (`alchemy_icontains`, registered by alchemy_site.sqlite):
an exact, case-insensitive substring match, as a phrase query on positions would give.
PostgreSQL: a pg_trgm GIN index on the same text expression, maintained by PostgreSQL.
Both are created by migration 0003. The user's text is always a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

FTS_TABLE = "evals_result_fts"
SEARCH_VIEW = "evals_result_search"
TABLE = "evals_evalresult"

SQLITE_BODY = (
    "coalesce(json_extract({t}.response, '$.output'), '') || ' ' || "
    "coalesce(json_extract({t}.test_case, '$.vars'), '') || ' ' || "
    "coalesce(json_extract({t}.grading_result, '$.reason'), '') || ' ' || "
    "coalesce({t}.metadata, '') || ' ' || coalesce({t}.error, '')"
)
POSTGRES_BODY = (
    "lower(coalesce(({t}.response ->> 'output'), '') || ' ' || "
    "coalesce(({t}.test_case ->> 'vars'), '') || ' ' || "
    "coalesce(({t}.grading_result ->> 'reason'), '') || ' ' || "
    "coalesce(({t}.metadata)::text, '') || ' ' || coalesce({t}.error, ''))"
)


def body_sql(vendor: str, table: str = TABLE) -> str:
    template = SQLITE_BODY if vendor == "sqlite" else POSTGRES_BODY
    return template.format(t=f'"{table}"')


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def index_results(*, eval_id: str, results: Iterable) -> None:
    """Add freshly inserted rows to the FTS index (SQLite; PostgreSQL indexes by itself)."""
    if not _sqlite():
        return
    ids = [r.pk for r in results if r.pk is not None]
    if not ids:
        return
    with connection.cursor() as cursor:
        # `+eval_id` keeps SQLite on the rowid range: with the plain column it picks an
        # (eval_id, …) index and walks every row the eval already has, once per batch.
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT id, body FROM {SEARCH_VIEW} "
            "WHERE id BETWEEN %s AND %s AND +eval_id = %s",
            [min(ids), max(ids), eval_id],
        )


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
    if not _sqlite() or after_id is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT id, body FROM {SEARCH_VIEW} "
            "WHERE id > %s AND +eval_id = %s",
            [after_id, eval_id],
        )


def unindex_results(*, eval_id: str, ids: list[int]) -> None:
    """Remove rows from the FTS index; call before the rows change or disappear."""
    if not _sqlite() or not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) "
            f"SELECT 'delete', id, body FROM {SEARCH_VIEW} WHERE eval_id = %s AND id IN "
            f"({', '.join(['%s'] * len(ids))})",
            [eval_id, *ids],
        )


def unindex_eval(*, eval_id: str) -> None:
    if not _sqlite():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, body) "
            f"SELECT 'delete', id, body FROM {SEARCH_VIEW} WHERE eval_id = %s",
            [eval_id],
        )


def rebuild() -> None:
    """Recompute the whole index from the results (for `db` maintenance)."""
    if _sqlite():
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")


def optimize() -> None:
    """Merge the index's segments into one (SQLite; `manage.py db analyze` runs it).

    Writers merge lazily (automerge 16, migration 0007), so a search may read a few
    segments per level; after this it reads one.
    """
    if _sqlite():
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def uses_fts(text: str) -> bool:
    return _sqlite() and len(text.strip()) >= 3


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
    grams = list(dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2)))
    if len(grams) > MAX_TRIGRAMS:
        step = (len(grams) - 1) / (MAX_TRIGRAMS - 1)
        grams = [grams[round(n * step)] for n in range(MAX_TRIGRAMS)]
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def search_q(text: str) -> Q:
    """A condition on EvalResult matching rows whose searchable text contains `text`."""
    text = text.strip()
    if not text:
        return Q()
    if _sqlite():
        if uses_fts(text):
            candidates = Q(
                id__in=RawSQL(
                    f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s", [fts_query(text)]
                )
            )
            if len(text) == 3:  # one trigram: every candidate holds the needle
                return candidates
            return candidates & Q(
                RawSQL(
                    f"alchemy_icontains({body_sql('sqlite')}, %s)",
                    [text],
                    output_field=BooleanField(),
                )
            )
        # Trigrams need three characters; shorter needles scan (within one eval).
        return Q(
            RawSQL(
                f"instr(lower({body_sql('sqlite')}), lower(%s)) > 0",
                [text],
                output_field=BooleanField(),
            )
        )
    return Q(
        RawSQL(
            f"{body_sql('postgresql')} LIKE %s",
            ["%" + _like_escape(text.lower()) + "%"],
            output_field=BooleanField(),
        )
    )
