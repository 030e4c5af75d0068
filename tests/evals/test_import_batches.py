"""The importer: batches within the server's limit, and JSON told from JSONL cheaply."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from evals import importers
from evals.models import Eval, EvalPromptStats, EvalResult
from tests.evals.factories import prompt, result

pytestmark = pytest.mark.django_db


def test_a_file_larger_than_the_batch_limit_is_imported_in_batches_within_it(
    tmp_path, settings, monkeypatch
):
    settings.RESULTS_BATCH_LIMIT = 3
    monkeypatch.setattr(importers, "BATCH", 5)
    path = tmp_path / "export.json"
    rows = [result(t, p) for t in range(7) for p in range(2)]
    path.write_text(
        json.dumps(
            {
                "evalId": "eval-batches",
                "results": {"prompts": [prompt(), prompt()], "results": rows},
            }
        )
    )
    call_command("import_promptfoo", str(path), stdout=StringIO())
    imported = Eval.objects.get(pk="eval-batches")
    assert EvalResult.objects.filter(eval=imported).count() == 14
    assert imported.test_count == 7
    assert (
        sum(EvalPromptStats.objects.filter(eval=imported).values_list("result_count", flat=True))
        == 14
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"results": [1, 2]}', False),
        (b'{"results": [1, 2]}\n  \n', False),
        (b'{\n  "results": []\n}\n', False),
        (b'{"testIdx": 0}\n{"testIdx": 1}\n', True),
        (b'  {"testIdx": 0}  \n{"testIdx": 1}', True),
        (b"[1]\n[2]\n", False),
        (b'{"a": 1} x\n{"b": 2}\n', False),
        (b'{"a": 1}{"b": 2}\n{"c": 3}\n', False),
    ],
)
def test_jsonl_is_told_from_json_by_its_first_line(tmp_path, text, expected):
    path = tmp_path / "export.txt"
    path.write_bytes(text)
    assert importers.is_jsonl(path) is expected


def test_a_compact_one_line_export_is_imported_as_json(tmp_path):
    path = tmp_path / "compact.json"
    rows = [result(t) for t in range(3)]
    path.write_text(
        json.dumps({"evalId": "eval-compact", "results": {"prompts": [prompt()], "results": rows}})
    )
    assert not importers.is_jsonl(path)
    call_command("import_promptfoo", str(path), stdout=StringIO())
    assert EvalResult.objects.filter(eval_id="eval-compact").count() == 3
