"""The free-text index keeps no token positions (FTS5 `detail=none`), SQLite only.

A search looks rows up by all of its needle's trigrams and then checks each candidate's
text (evals.search), so positions were never needed; without them the index is about a
third of the size and keeping it in step costs a quarter of what it did per batch.
It also merges its segments less eagerly (automerge 16, FTS5's crisis-merge level, instead
of 4): each batch's insert then costs about half, and a search reads a few more segments
(measured 0.45 → 0.65 ms for a needle over 200,000 rows); `manage.py db analyze` merges
them all. The index is derived from the results, so it is dropped and rebuilt: nothing
is lost.
"""

from django.db import migrations

CREATE = (
    "CREATE VIRTUAL TABLE evals_result_fts USING fts5(body, content='evals_result_search', "
    "content_rowid='id', tokenize='trigram', detail={detail})"
)


def recreate(detail):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "sqlite":
            return
        schema_editor.execute("DROP TABLE IF EXISTS evals_result_fts")
        schema_editor.execute(CREATE.format(detail=detail))
        if detail == "none":
            schema_editor.execute(
                "INSERT INTO evals_result_fts(evals_result_fts, rank) VALUES ('automerge', 16)"
            )
        schema_editor.execute("INSERT INTO evals_result_fts(evals_result_fts) VALUES ('rebuild')")

    return run


class Migration(migrations.Migration):
    dependencies = [("evals", "0006_result_facts")]

    operations = [migrations.RunPython(recreate("none"), recreate("full"), elidable=False)]
