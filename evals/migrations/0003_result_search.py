"""Free-text search index over results, per vendor (see evals/search.py).

SQLite: a view computing each result's searchable text and an FTS5 external-content
table (trigram tokenizer) over it; the write path keeps it in step.
PostgreSQL: pg_trgm and a GIN index on the same expression.
"""

from django.db import migrations

SQLITE_BODY = (
    "coalesce(json_extract(response, '$.output'), '') || ' ' || "
    "coalesce(json_extract(test_case, '$.vars'), '') || ' ' || "
    "coalesce(json_extract(grading_result, '$.reason'), '') || ' ' || "
    "coalesce(metadata, '') || ' ' || coalesce(error, '')"
)
POSTGRES_BODY = (
    "lower(coalesce((response ->> 'output'), '') || ' ' || "
    "coalesce((test_case ->> 'vars'), '') || ' ' || "
    "coalesce((grading_result ->> 'reason'), '') || ' ' || "
    "coalesce((metadata)::text, '') || ' ' || coalesce(error, ''))"
)


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(
            f"CREATE VIEW evals_result_search AS SELECT id, eval_id, {SQLITE_BODY} AS body "
            "FROM evals_evalresult"
        )
        schema_editor.execute(
            "CREATE VIRTUAL TABLE evals_result_fts USING fts5(body, "
            "content='evals_result_search', content_rowid='id', tokenize='trigram')"
        )
        schema_editor.execute("INSERT INTO evals_result_fts(evals_result_fts) VALUES ('rebuild')")
    elif vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS result_search_trgm ON evals_evalresult "
            f"USING gin (({POSTGRES_BODY}) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TABLE IF EXISTS evals_result_fts")
        schema_editor.execute("DROP VIEW IF EXISTS evals_result_search")
    elif vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS result_search_trgm")


class Migration(migrations.Migration):
    dependencies = [("evals", "0002_stats_request_and_grader_tokens")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
