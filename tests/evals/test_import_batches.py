"""The importer's batching: several add_results calls per file, within the server's limit."""

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
