from __future__ import annotations

import gc
import json
import sqlite3
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from evals.management.commands import import_promptfoo
from evals.models import Eval, EvalPrompt, EvalPromptStats, EvalResult
from evals.selectors import eval_stats

pytestmark = pytest.mark.django_db

# A real promptfoo export (MIT, see tests/fixtures/PROVENANCE.md), kept in the repo so the
# suite does not depend on a folder beside the checkout.
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "promptfoo-sample-export.json"
FIXTURE_ID = "eval-WJi-2025-10-01T20:08:11"


def run(*args) -> str:
    out = StringIO()
    call_command("import_promptfoo", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.fixture
def imported():
    run(FIXTURE)
    return Eval.objects.get(pk=FIXTURE_ID)


def test_the_fixture_keeps_id_author_and_created_time(imported):
    assert imported.author == "steve@promptfoo.dev"
    assert imported.created_at.isoformat() == "2025-10-01T20:08:11.168000+00:00"
    assert imported.status == "complete"
    assert imported.vars == ["riddle"]


def test_the_fixture_gives_two_prompts_two_tests_four_results(imported):
    assert EvalPrompt.objects.filter(eval=imported).count() == 2
    assert imported.test_count == 2
    assert EvalResult.objects.filter(eval=imported).count() == 4


def test_the_fixtures_stored_metrics_are_reproduced(imported):
    expected = [p["metrics"] for p in json.loads(FIXTURE.read_text())["results"]["prompts"]]
    got = [p["metrics"]["promptfoo"] for p in eval_stats(eval=imported)["prompts"]]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["score"] == pytest.approx(theirs["score"])
        for key in ("testPassCount", "testFailCount", "testErrorCount", "assertPassCount"):
            assert mine[key] == theirs[key], key
        assert mine["assertFailCount"] == theirs["assertFailCount"]
        assert mine["totalLatencyMs"] == theirs["totalLatencyMs"]
        assert mine["cost"] == pytest.approx(theirs["cost"])
        for key in ("total", "prompt", "completion", "cached", "numRequests"):
            assert mine["tokenUsage"][key] == theirs["tokenUsage"][key]
        assert (
            mine["tokenUsage"]["assertions"]["total"] == theirs["tokenUsage"]["assertions"]["total"]
        )


def test_reimport_is_refused_unless_new_id_or_force(imported):
    with pytest.raises(CommandError, match="already imported"):
        run(FIXTURE)
    run(FIXTURE, "--new-id")
    assert Eval.objects.count() == 2
    run(FIXTURE, "--force")
    assert Eval.objects.count() == 2 and EvalResult.objects.count() == 8


ROW_FIELDS = (
    "prompt_idx", "test_idx", "test_case", "prompt", "provider", "response", "error",
    "failure_reason", "success", "score", "latency_ms", "cost", "grading_result",
    "named_scores", "metadata",
)  # fmt: skip


def rows(eval_id: str) -> list[tuple]:
    return list(
        EvalResult.objects.filter(eval_id=eval_id)
        .order_by("test_idx", "prompt_idx")
        .values_list(*ROW_FIELDS)
    )


def test_export_then_import_round_trips_to_identical_rows(imported, tmp_path):
    target = tmp_path / "out.json"
    call_command(
        "export_eval", FIXTURE_ID, "--format", "json", "-o", str(target), stdout=StringIO()
    )
    envelope = json.loads(target.read_text())
    assert envelope["evalId"] == FIXTURE_ID and envelope["results"]["version"] == 3
    run(target, "--new-id")
    copy = Eval.objects.exclude(pk=FIXTURE_ID).get()
    assert rows(copy.id) == rows(FIXTURE_ID)
    assert copy.author == imported.author and copy.created_at == imported.created_at
    mine = list(EvalPromptStats.objects.filter(eval=copy).values_list("score_sum", "cost_sum"))
    assert mine == list(
        EvalPromptStats.objects.filter(eval=imported).values_list("score_sum", "cost_sum")
    )


def test_jsonl_export_imports_back(imported, tmp_path):
    target = tmp_path / "out.jsonl"
    call_command(
        "export_eval", FIXTURE_ID, "--format", "jsonl", "-o", str(target), stdout=StringIO()
    )
    run(target, "--new-id")
    copy = Eval.objects.exclude(pk=FIXTURE_ID).get()
    assert rows(copy.id) == rows(FIXTURE_ID)


def test_a_malformed_record_is_named_and_nothing_is_written(tmp_path):
    data = json.loads(FIXTURE.read_text())
    data["results"]["results"][2]["score"] = "great"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CommandError, match=r"result #2.*score"):
        run(bad)
    assert not Eval.objects.exists() and not EvalResult.objects.exists()


def test_truncated_json_writes_nothing(tmp_path):
    bad = tmp_path / "cut.json"
    bad.write_text(FIXTURE.read_text()[:9000])
    with pytest.raises(CommandError, match="Nothing imported"):
        run(bad)
    assert not Eval.objects.exists()


def make_promptfoo_db(path: Path) -> None:
    data = json.loads(FIXTURE.read_text())
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE evals (id TEXT PRIMARY KEY, created_at INTEGER, author TEXT, description TEXT,
            results TEXT, config TEXT, prompts TEXT, vars TEXT, is_redteam INTEGER);
        CREATE TABLE eval_results (id TEXT, eval_id TEXT, prompt_idx INTEGER, test_idx INTEGER,
            test_case TEXT, prompt TEXT, provider TEXT, latency_ms INTEGER, cost REAL,
            response TEXT, error TEXT, failure_reason INTEGER, success INTEGER, score REAL,
            grading_result TEXT, named_scores TEXT, metadata TEXT);
        CREATE TABLE tags (id TEXT, name TEXT, value TEXT);
        CREATE TABLE evals_to_tags (eval_id TEXT, tag_id TEXT);
        """
    )
    db.execute(
        "INSERT INTO evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
        [FIXTURE_ID, 1759349291168, "steve@promptfoo.dev", "riddles", "{}",
         json.dumps(data["config"]), json.dumps(data["results"]["prompts"]), '["riddle"]'],
    )  # fmt: skip
    db.execute(
        "INSERT INTO evals VALUES ('eval-old-2024-01-01T00:00:00', 1704067200000, 'a', 'v3', ?, "
        "'{}', NULL, NULL, 0)",
        [json.dumps({"version": 3, "results": data["results"]["results"][:2]})],
    )
    for r in data["results"]["results"]:
        db.execute(
            "INSERT INTO eval_results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [r["id"], FIXTURE_ID, r["promptIdx"], r["testIdx"], json.dumps(r["testCase"]),
             json.dumps(r["prompt"]), json.dumps(r["provider"]), r["latencyMs"], r["cost"],
             json.dumps(r["response"]), r.get("error"), r["failureReason"], int(r["success"]),
             r["score"], json.dumps(r["gradingResult"]), json.dumps(r["namedScores"]),
             json.dumps(r["metadata"])],
        )  # fmt: skip
    db.execute("INSERT INTO tags VALUES ('t1', 'team', 'ml')")
    db.execute("INSERT INTO evals_to_tags VALUES (?, 't1')", [FIXTURE_ID])
    db.commit()
    db.close()


def test_a_promptfoo_database_imports_every_eval(tmp_path):
    source = tmp_path / "promptfoo.db"
    make_promptfoo_db(source)
    run(source)
    imported = Eval.objects.get(pk=FIXTURE_ID)
    assert imported.created_at.isoformat().startswith("2025-10-01T20:08:11.168")
    assert EvalResult.objects.filter(eval=imported).count() == 4
    assert imported.eval_tags.get().tag.name == "team"
    legacy = Eval.objects.get(pk="eval-old-2024-01-01T00:00:00")
    assert legacy.version == 3 and EvalResult.objects.filter(eval=legacy).count() == 2
    assert EvalPromptStats.objects.get(eval=imported, prompt_idx=0).assert_pass_count == 4


def test_one_eval_can_be_picked_from_a_database(tmp_path):
    source = tmp_path / "promptfoo.db"
    make_promptfoo_db(source)
    run(source, "--eval", FIXTURE_ID)
    assert list(Eval.objects.values_list("id", flat=True)) == [FIXTURE_ID]


def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="not a file"):
        run(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("database or disk is full", "out of space; the eval being imported was not stored"),
        ("server closed the connection", "not stored: server closed the connection"),
    ],
)
def test_a_database_failure_is_a_command_error_that_says_what_happened(monkeypatch, error, message):
    def fail(*args, **kwargs):
        raise OperationalError(error)

    monkeypatch.setattr("evals.management.commands.import_promptfoo.import_path", fail)
    with pytest.raises(CommandError, match=message):
        run(FIXTURE)


def test_the_import_collects_less_often_and_restores_the_collector(monkeypatch):
    during = {}

    def record(*args, **kwargs):
        during.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count())
        return []

    # As in a process that froze nothing yet (Django's set-up froze this one's start-up,
    # alchemy_site.apps), so that restoring the collector is seen to unfreeze.
    gc.unfreeze()
    before = gc.get_threshold()
    monkeypatch.setattr(import_promptfoo, "import_path", record)
    run(FIXTURE)
    assert during["threshold"] == import_promptfoo.IMPORT_GC_THRESHOLD
    assert during["frozen"] > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's page cache")
@pytest.mark.django_db(transaction=True)  # as the command runs: temp_store is set outside one
def test_an_import_writes_with_a_smaller_page_cache_no_map_and_temp_files_on_disk_then_gives_them_back(
    monkeypatch,
):
    from alchemy_site.sqlite import BULK_CACHE_KIB, CACHE_KIB, MMAP_BYTES

    file, memory = 1, 2  # PRAGMA temp_store's answers

    def pragmas() -> tuple[int, int, int]:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            cache = -cursor.fetchone()[0]
            cursor.execute("PRAGMA mmap_size")
            mapped = cursor.fetchone()[0]
            cursor.execute("PRAGMA temp_store")
            return cache, mapped, cursor.fetchone()[0]

    during = []
    real = import_promptfoo.import_path
    monkeypatch.setattr(
        import_promptfoo, "import_path", lambda *a, **k: during.append(pragmas()) or real(*a, **k)
    )
    run(FIXTURE)
    assert during == [(BULK_CACHE_KIB, 0, file)]
    assert pragmas() == (CACHE_KIB, MMAP_BYTES, memory)
    assert Eval.objects.filter(pk=FIXTURE_ID).exists()


def test_an_imports_batches_write_without_savepoints_of_their_own(settings):
    from django.test.utils import CaptureQueriesContext

    def savepoints(batch_limit: int) -> int:
        settings.RESULTS_BATCH_LIMIT = batch_limit
        before = EvalResult.objects.count()
        with CaptureQueriesContext(connection) as queries:
            run(FIXTURE, "--new-id")
        assert EvalResult.objects.count() == before + 4
        return sum(q["sql"].startswith("SAVEPOINT") for q in queries)

    # Four results in four batches or in two: the same savepoints (the command's, creating,
    # updating and completing the eval), none per batch. A batch's savepoint had a
    # sub-journal that copied every page the batch changed.
    assert savepoints(1) == savepoints(2)
