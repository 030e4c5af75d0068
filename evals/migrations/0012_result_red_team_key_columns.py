"""The red-team metadata keys (pluginId, strategyId, severity) get columns of their own.

Their indexes were on JSON expressions of `metadata`: every inserted row parsed its
metadata again for each of them (about a third of an insert's work in SQLite; measured
with callgrind, 218k → 132k instructions a row for the table and its indexes). The write
path now stores each key lower-cased (evals.prepare.key_text) and the filters read the
columns; plain indexes serve them.

Older rows get their values here, in batches, computed as the write path computes them.
The old indexes go first (nothing reads them meanwhile) and the new ones are built once
the columns are filled. Reversing restores the expression indexes and drops the columns:
nothing is lost (the metadata holds the keys).
"""

from django.db import migrations, models

from alchemy_site import fastjson

FILL_BATCH = 2000


def fill(apps, schema_editor):
    """Every stored result's key columns, as evals.prepare.metadata_keys spells them."""
    from evals.prepare import metadata_keys

    connection = schema_editor.connection
    table = connection.ops.quote_name("evals_evalresult")
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, metadata FROM {table} WHERE id > %s ORDER BY id LIMIT %s",
                [last, FILL_BATCH],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        values = []
        for id_, metadata in rows:
            keys = metadata_keys(fastjson.loads(metadata) if isinstance(metadata, str) else metadata)
            if keys != (None, None, None):
                values.append((*keys, id_))
        if values:
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {table} SET meta_plugin_id = %s, meta_strategy_id = %s, "
                    "meta_severity = %s WHERE id = %s",
                    values,
                )
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("evals", "0011_result_search_values")]

    operations = [
        migrations.RemoveIndex(model_name="evalresult", name="result_meta_plugin_test"),
        migrations.RemoveIndex(model_name="evalresult", name="result_meta_strategy_test"),
        migrations.RemoveIndex(model_name="evalresult", name="result_meta_severity_test"),
        migrations.AddField(
            model_name="evalresult",
            name="meta_plugin_id",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="evalresult",
            name="meta_strategy_id",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="evalresult",
            name="meta_severity",
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.AddIndex(
            model_name="evalresult",
            index=models.Index(
                fields=["eval", "meta_plugin_id", "test_idx"], name="result_plugin_test"
            ),
        ),
        migrations.AddIndex(
            model_name="evalresult",
            index=models.Index(
                fields=["eval", "meta_strategy_id", "test_idx"], name="result_strategy_test"
            ),
        ),
        migrations.AddIndex(
            model_name="evalresult",
            index=models.Index(
                fields=["eval", "meta_severity", "test_idx"], name="result_severity_test"
            ),
        ),
    ]
