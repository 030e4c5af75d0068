"""The free-text index keeps no token positions (FTS5 `detail=none`), SQLite only.

A search looks rows up by all of its needle's trigrams and then checks each candidate's
text (evals.search), so positions were never needed; without them the index is about a
third of the size and keeping it in step costs a quarter of what it did per batch.
The index is derived from the results, so it is dropped and rebuilt: nothing is lost.
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
        schema_editor.execute("INSERT INTO evals_result_fts(evals_result_fts) VALUES ('rebuild')")

    return run


class Migration(migrations.Migration):
    dependencies = [("evals", "0006_result_facts")]

    operations = [migrations.RunPython(recreate("none"), recreate("full"), elidable=False)]
