"""The importer: batches within the server's limit, and JSON told from JSONL cheaply."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evals import forked, importers
from evals.models import (
    Eval,
    EvalDataset,
    EvalPrompt,
    EvalPromptStats,
    EvalResult,
    EvalTag,
)
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


# --- one parse, whatever the key order ---------------------------------------------------

TESTS = [{"vars": {"topic": "a", "word": "w0"}}, {"vars": {"word": "w1"}}]


def export_parts(count: int) -> dict:
    """The parts of a promptfoo export (config and metadata differ from what comes first)."""
    rows = [
        result(t, p, vars={"word": f"w{t}", "lang": "en"}, success=t % 3 != 0)
        for t in range(count)
        for p in range(2)
    ]
    return {
        "evalId": "eval-order",
        "version": 3,
        "timestamp": "2025-10-01T20:08:11.168Z",
        "prompts": [prompt("Say {{word}}"), prompt("Shout {{word}}", provider="loud")],
        "results": rows,
        "stats": {"successes": 1},
        "config": {
            "description": "ordered",
            "tests": TESTS,
            "tags": {"team": "ml", "run": None},
            "redteam": {},
        },
        "shareableUrl": None,
        "metadata": {"author": "ana@example.com", "evaluationCreatedAt": "2025-10-02T08:00:00Z"},
    }


def write_export(path, parts: dict, top: list[str], nested: list[str]) -> None:
    body = {key: parts[key] for key in nested}
    document = {key: body if key == "results" else parts[key] for key in top}
    path.write_text(json.dumps(document))


def snapshot(eval_id: str) -> dict:
    eval_ = Eval.objects.get(pk=eval_id)
    return {
        "eval": {
            name: getattr(eval_, name)
            for name in (
                "author",
                "description",
                "config",
                "vars",
                "is_redteam",
                "created_at",
                "test_count",
                "status",
                "version",
                "legacy_results",
            )
        },  # fmt: skip
        "tags": sorted(EvalTag.objects.filter(eval=eval_).values_list("tag__name", "tag__value")),
        "dataset": list(
            EvalDataset.objects.filter(eval=eval_).values_list("dataset__tests", flat=True)
        ),
        "prompts": list(
            EvalPrompt.objects.filter(eval=eval_)
            .order_by("prompt_idx")
            .values("prompt_text_id", "label", "provider", "extra")
        ),
        "stats": list(
            EvalPromptStats.objects.filter(eval=eval_)
            .order_by("prompt_idx")
            .values("result_count", "pass_count", "fail_count", "score_sum")
        ),
        "results": list(
            EvalResult.objects.filter(eval=eval_)
            .order_by("id")
            .values("test_idx", "prompt_idx", "test_case", "prompt", "prompt_text_id", "success")
        ),
    }


NESTED = ["version", "timestamp", "prompts", "results", "stats"]
PROMPTFOO_ORDER = ["evalId", "results", "config", "shareableUrl", "metadata"]


@pytest.mark.parametrize(
    ("top", "nested"),
    [
        (PROMPTFOO_ORDER, NESTED),
        (["config", "metadata", "results", "shareableUrl", "evalId"], NESTED),
        (["evalId", "results", "metadata", "config"], ["results", "stats", "prompts", "timestamp"]),
    ],
    ids=["promptfoo-order", "config-first-id-last", "prompts-after-results"],
)
def test_any_key_order_imports_what_a_header_first_file_imports(
    tmp_path, settings, monkeypatch, top, nested
):
    settings.RESULTS_BATCH_LIMIT = 4
    parts = export_parts(7)
    reference = tmp_path / "header-first.json"
    write_export(
        reference, parts, ["evalId", "config", "metadata", "shareableUrl", "results"], NESTED
    )
    call_command("import_promptfoo", str(reference), stdout=StringIO())
    expected = snapshot("eval-order")

    path = tmp_path / "export.json"
    write_export(path, parts, top, nested)
    call_command("import_promptfoo", str(path), "--force", stdout=StringIO())
    got = snapshot("eval-order")

    assert got == expected
    assert got["eval"]["vars"] == ["topic", "word", "lang"]
    assert got["eval"]["created_at"].isoformat() == "2025-10-02T08:00:00+00:00"
    assert got["eval"]["author"] == "ana@example.com" and got["eval"]["is_redteam"]
    assert got["tags"] == [("run", ""), ("team", "ml")]
    assert got["dataset"] == [TESTS]
    assert len(got["results"]) == 14


def test_a_promptfoo_ordered_export_is_parsed_once(tmp_path, settings, monkeypatch):
    settings.RESULTS_BATCH_LIMIT = 4
    path = tmp_path / "export.json"
    write_export(path, export_parts(5), PROMPTFOO_ORDER, NESTED)

    def no_header_pass(handle):
        raise AssertionError("the header pass ran")

    monkeypatch.setattr(importers, "read_header", no_header_pass)
    call_command("import_promptfoo", str(path), stdout=StringIO())
    assert Eval.objects.get(pk="eval-order").author == "ana@example.com"


def test_a_new_id_needs_no_header_pass_when_the_file_has_no_id(tmp_path, settings, monkeypatch):
    settings.RESULTS_BATCH_LIMIT = 4
    parts = export_parts(5)
    path = tmp_path / "export.json"
    write_export(path, parts, ["results", "config", "metadata"], NESTED)
    monkeypatch.setattr(importers, "read_header", lambda handle: pytest.fail("header pass"))
    call_command("import_promptfoo", str(path), "--new-id", stdout=StringIO())
    assert Eval.objects.get().description == "ordered"


@pytest.mark.parametrize(
    "tail",
    [
        ', "config": {"tests": [1]}, "metadata": {"author": "x"',  # cut short after the results
        ', "config": {"description": "ok"}} trailing',
    ],
)
def test_invalid_json_after_written_batches_leaves_nothing(tmp_path, settings, tail):
    settings.RESULTS_BATCH_LIMIT = 4
    rows = [result(t, p) for t in range(7) for p in range(2)]
    head = {"evalId": "eval-cut", "results": {"prompts": [prompt(), prompt()], "results": rows}}
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(head)[:-1] + tail)
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_promptfoo", str(path), stdout=StringIO())
    assert not Eval.objects.exists() and not EvalResult.objects.exists()


def test_a_malformed_record_in_a_later_batch_leaves_nothing(tmp_path, settings):
    settings.RESULTS_BATCH_LIMIT = 4
    parts = export_parts(7)
    parts["results"][11]["score"] = "great"
    path = tmp_path / "bad.json"
    write_export(path, parts, PROMPTFOO_ORDER, NESTED)
    with pytest.raises(CommandError, match=r"result #11.*score"):
        call_command("import_promptfoo", str(path), stdout=StringIO())
    assert not Eval.objects.exists() and not EvalResult.objects.exists()


@pytest.mark.parametrize("text", ["[1, 2, 3]", '"results"', "  \n"])
def test_a_file_that_is_not_an_object_is_refused(tmp_path, text):
    path = tmp_path / "odd.json"
    path.write_text(text)
    with pytest.raises(CommandError, match="No results found|not valid JSON"):
        call_command("import_promptfoo", str(path), stdout=StringIO())


def reader_pids(tmp_path, monkeypatch) -> Path:
    """Where each prepared batch's process id is written (from whichever process)."""
    pids = tmp_path / "reader-pids"
    real = importers._Reader.prepare

    def prepare(self, batch):
        with pids.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return real(self, batch)

    monkeypatch.setattr(importers._Reader, "prepare", prepare)
    return pids


@pytest.mark.skipif(not forked.available(), reason="needs os.fork (Linux)")
@pytest.mark.parametrize("second_process", [True, False])
def test_the_file_is_read_in_a_second_process_unless_told_not_to(
    tmp_path, settings, monkeypatch, second_process
):
    settings.IMPORT_READER_PROCESS = second_process
    settings.RESULTS_BATCH_LIMIT = 4
    pids = reader_pids(tmp_path, monkeypatch)
    path = tmp_path / "export.json"
    write_export(path, export_parts(7), PROMPTFOO_ORDER, NESTED)
    call_command("import_promptfoo", str(path), stdout=StringIO())
    readers = set(pids.read_text().split())
    assert len(pids.read_text().split()) == 4  # 14 results in batches of 4
    assert (readers != {str(os.getpid())}) is second_process
    assert EvalResult.objects.filter(eval_id="eval-order").count() == 14


def test_a_failure_while_writing_stops_the_reader_and_leaves_nothing(
    tmp_path, settings, monkeypatch
):
    settings.RESULTS_BATCH_LIMIT = 4
    pids = reader_pids(tmp_path, monkeypatch)
    real = importers._Writer.add
    calls = []

    def add(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second batch is written
        return real(self, *args)

    monkeypatch.setattr(importers._Writer, "add", add)
    path = tmp_path / "export.json"
    write_export(path, export_parts(50), PROMPTFOO_ORDER, NESTED)
    with pytest.raises(KeyboardInterrupt):
        call_command("import_promptfoo", str(path), stdout=StringIO())
    assert not Eval.objects.exists() and not EvalResult.objects.exists()
    for pid in set(pids.read_text().split()) - {str(os.getpid())}:
        assert not Path(f"/proc/{pid}").exists()  # the reader is gone, not left parsing
