"""Each result stores what a free-text search looks in (`search_text`), and that is indexed.

The index used to hold the JSON text of `vars` and `metadata`: a search for a var's name
(`question`) or a metadata key (`severity`) matched every result that had one, and a value
holding a quote or a newline was indexed as its JSON escapes (`\\"`, `\\n`), so its own
text did not match it. The text is now the output, the values of vars and metadata, the
grading reason and the error, lower-cased (evals.prepare.search_text), written by the write
path with each row: about 40% shorter, and no JSON is parsed to index or check it.

SQLite: the FTS5 table's content is that column (its view goes); the trigram tokenizer
needs no case folding, and no per-row token counts are kept (`columnsize=0`: they serve
only ranking, which searches don't use). PostgreSQL: the trigram index is on the column.

Older rows get their text here, in batches; the indexes are derived from it and rebuilt.
Reversing restores the 0007 index over the JSON and drops the column: nothing is lost.
"""

from django.db import migrations, models

from alchemy_site import fastjson

OLD_SQLITE_BODY = (
    "coalesce(json_extract(response, '$.output'), '') || ' ' || "
    "coalesce(json_extract(test_case, '$.vars'), '') || ' ' || "
    "coalesce(json_extract(grading_result, '$.reason'), '') || ' ' || "
    "coalesce(metadata, '') || ' ' || coalesce(error, '')"
)
OLD_POSTGRES_BODY = (
    "lower(coalesce((response ->> 'output'), '') || ' ' || "
    "coalesce((test_case ->> 'vars'), '') || ' ' || "
    "coalesce((grading_result ->> 'reason'), '') || ' ' || "
    "coalesce((metadata)::text, '') || ' ' || coalesce(error, ''))"
)
FILL_BATCH = 2000


def fill(apps, schema_editor):
    """Every stored result's search text, computed as the write path computes it."""
    from evals.prepare import search_text

    connection = schema_editor.connection
    table = connection.ops.quote_name("evals_evalresult")
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, response, test_case, grading_result, metadata, error FROM {table} "
                "WHERE id > %s ORDER BY id LIMIT %s",
                [last, FILL_BATCH],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        texts = []
        for id_, response, test_case, grading, metadata, error in rows:
            response, test_case, grading, metadata = (
                fastjson.loads(v) if isinstance(v, str) else v
                for v in (response, test_case, grading, metadata)
            )
            vars_ = test_case.get("vars") if isinstance(test_case, dict) else None
            text = search_text(
                response=response, vars_=vars_, grading_result=grading, metadata=metadata,
                error=error,
            )  # fmt: skip
            texts.append((text, id_))
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET search_text = %s WHERE id = %s", texts)
        last = rows[-1][0]


def sqlite_fts(schema_editor, *, content: str, column: str, options: str) -> None:
    schema_editor.execute("DROP TABLE IF EXISTS evals_result_fts")
    schema_editor.execute(
        f"CREATE VIRTUAL TABLE evals_result_fts USING fts5({column}, content='{content}', "
        f"content_rowid='id', {options})"
    )
    schema_editor.execute(
        "INSERT INTO evals_result_fts(evals_result_fts, rank) VALUES ('automerge', 16)"
    )
    schema_editor.execute("INSERT INTO evals_result_fts(evals_result_fts) VALUES ('rebuild')")


def index_forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        sqlite_fts(
            schema_editor, content="evals_evalresult", column="search_text",
            options="tokenize='trigram case_sensitive 1', detail=none, columnsize=0",
        )  # fmt: skip
        schema_editor.execute("DROP VIEW IF EXISTS evals_result_search")
    elif vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS result_search_text_trgm ON evals_evalresult "
            "USING gin (search_text gin_trgm_ops)"
        )
        schema_editor.execute("DROP INDEX IF EXISTS result_search_trgm")


def index_backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIEW IF NOT EXISTS evals_result_search AS SELECT id, eval_id, "
            f"{OLD_SQLITE_BODY} AS body FROM evals_evalresult"
        )
        sqlite_fts(
            schema_editor, content="evals_result_search", column="body",
            options="tokenize='trigram', detail=none",
        )  # fmt: skip
    elif vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS result_search_trgm ON evals_evalresult "
            f"USING gin (({OLD_POSTGRES_BODY}) gin_trgm_ops)"
        )
        schema_editor.execute("DROP INDEX IF EXISTS result_search_text_trgm")


class Migration(migrations.Migration):
    dependencies = [("evals", "0010_eval_outcomes")]

    operations = [
        migrations.AddField(
            model_name="evalresult",
            name="search_text",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(index_forwards, index_backwards, elidable=False),
    ]
