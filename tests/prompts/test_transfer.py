from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from prompts import services
from prompts.learning import record_feedback
from prompts.models import (
    EmbeddingSpace,
    EnhancementHistory,
    LearningPattern,
    Metric,
    ModelMetadata,
    ModelPrice,
    Prompt,
    Tag,
    UserFeedback,
)
from tests.prompts.factories import PromptFactory

pytestmark = pytest.mark.django_db

TABLES = [
    Prompt,
    ModelMetadata,
    Metric,
    EnhancementHistory,
    UserFeedback,
    LearningPattern,
    ModelPrice,
]


def snapshot() -> dict:
    rows = {
        model.__name__: sorted(model.objects.values(), key=lambda r: str(r["id"]))
        for model in TABLES
    }
    for row in rows["Prompt"]:
        row["embedding"] = bytes(row["embedding"]) if row["embedding"] is not None else None
    rows["tags"] = sorted(Prompt.tags.through.objects.values_list("prompt_id", "tag__name"))
    return rows


def build_registry() -> None:
    root = PromptFactory(tags=["sql", "backend"], original_input="write sql")
    child = PromptFactory(parent=root, variant_of=root, persona="code")
    PromptFactory(parent=child, provider="anthropic", model="claude-3-5-haiku")
    services.add_metadata(
        prompt=root,
        generation_model="gpt-4o",
        generation_provider="openai",
        processing_time=900,
        input_tokens=100,
        output_tokens=50,
    )
    services.add_metric(prompt=root, token_usage=150, success_rate=0.5, user_rating=4)
    services.update_prompt(prompt=child, content="edited child", reason="tighter")
    record_feedback(prompt=root, rating=4, feedback_text="good")
    client_vector = services.Vector(values=[0.6, 0.8], model="toy-2")
    services.create_prompt(
        content="vectored",
        phase="coagulatio",
        provider="ollama",
        model="llama3",
        vector=client_vector,
    )


def wipe() -> None:
    for root in Prompt.objects.filter(parent__isnull=True):
        services.delete_prompt(prompt=root, children="cascade")
    for model in (LearningPattern, ModelPrice, Tag, EmbeddingSpace):
        model.objects.all().delete()


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_then_import_into_an_empty_database_gives_identical_rows(tmp_path: Path, fmt):
    build_registry()
    before = snapshot()
    path = tmp_path / f"registry.{fmt}"
    call_command("prompts", "export", "--format", fmt, "-o", str(path), stdout=StringIO())
    wipe()
    assert Prompt.objects.count() == 0

    out = StringIO()
    call_command("prompts", "import", str(path), stdout=out)

    assert snapshot() == before
    assert "Imported" in out.getvalue()
    assert EmbeddingSpace.objects.filter(model="toy-2", dimensions=2).exists()


def test_importing_the_same_file_twice_skips_identical_rows(tmp_path: Path):
    build_registry()
    path = tmp_path / "registry.json"
    call_command("prompts", "export", "-o", str(path), stdout=StringIO())

    out = StringIO()
    call_command("prompts", "import", str(path), stdout=out)

    assert "0 new" in out.getvalue()
    assert "Imported 0 of " in out.getvalue() and "already there" in out.getvalue()


def test_a_changed_row_conflicts_unless_told_to_update(tmp_path: Path):
    prompt = PromptFactory(content="one")
    path = tmp_path / "registry.json"
    call_command("prompts", "export", "-o", str(path), stdout=StringIO())
    Prompt.objects.filter(pk=prompt.pk).update(model="changed")

    with pytest.raises(CommandError, match="already exists and differs"):
        call_command("prompts", "import", str(path), stdout=StringIO())
    call_command("prompts", "import", str(path), "--on-conflict", "update", stdout=StringIO())

    prompt.refresh_from_db()
    assert prompt.model == "gpt-4o-mini"


def test_a_bad_record_is_reported_by_line_and_nothing_is_written(tmp_path: Path):
    PromptFactory()
    path = tmp_path / "registry.jsonl"
    call_command("prompts", "export", "--format", "jsonl", "-o", str(path), stdout=StringIO())
    lines = path.read_text().splitlines()
    Prompt.objects.all().delete()
    feedback = {
        "table": "user_feedback",
        "row": {
            "id": 1,
            "prompt_id": json.loads(lines[1])["row"]["id"],
            "rating": 6,
            "feedback_type": "",
            "feedback_text": "",
            "session_id": "",
            "created_at": "2025-01-01T00:00:00+00:00",
        },
    }
    path.write_text("\n".join([*lines, json.dumps(feedback)]) + "\n")

    with pytest.raises(CommandError, match=rf"line {len(lines) + 1}: .*rating"):
        call_command("prompts", "import", str(path), stdout=StringIO())

    assert Prompt.objects.count() == 0


def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": 1}\n')

    with pytest.raises(CommandError, match="line 1"):
        call_command("prompts", "import", str(path), stdout=StringIO())


def test_export_since_keeps_only_recent_prompts(tmp_path: Path):
    import datetime

    PromptFactory(now=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    recent = PromptFactory()
    out = StringIO()

    call_command("prompts", "export", "--since", "2024-01-01", stdout=out)

    document = json.loads(out.getvalue())
    assert [row["id"] for row in document["tables"]["prompts"]] == [str(recent.pk)]


def _tagged_export(tmp_path: Path, count: int) -> Path:
    """An export of `count` prompts, each tagged "shared" and its own tag, then wiped; as
    a hand-edited file may, each names "shared" twice."""
    for n in range(count):
        PromptFactory(content=f"tagged {n}", tags=["shared", f"own-{n}"])
    path = tmp_path / f"tagged-{count}.jsonl"
    call_command("prompts", "export", "--format", "jsonl", "-o", str(path), stdout=StringIO())
    wipe()
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("table") == "prompts":
            record["row"]["tags"] = [*record["row"]["tags"], "shared"]
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tags_of_imported_prompts_are_written_in_bulk(tmp_path: Path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    wipe()  # the seeded model prices too: only prompts and tags are exported
    counts = []
    for count in (2, 30):
        path = _tagged_export(tmp_path, count)
        with CaptureQueriesContext(connection) as queries:
            call_command("prompts", "import", str(path), stdout=StringIO())
        counts.append(len(queries))
        tags = sorted(Prompt.tags.through.objects.values_list("prompt__content", "tag__name"))
        assert len(tags) == 2 * count  # "shared" linked once
        assert ("tagged 1", "own-1") in tags
        assert ("tagged 1", "shared") in tags
        wipe()

    assert counts[0] == counts[1]


def test_a_row_the_database_refuses_is_named_by_line_and_nothing_is_written(tmp_path: Path):
    for n in range(3):
        PromptFactory(content=f"prompt {n}")
    path = tmp_path / "registry.jsonl"
    call_command("prompts", "export", "--format", "jsonl", "-o", str(path), stdout=StringIO())
    wipe()
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["row"]["relevance_score"] = 1.5  # a CHECK constraint's, not a field's, to refuse
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(
        CommandError, match=r"line 3: .*prompt_relevance_0_1.*\. Nothing was imported"
    ):
        call_command("prompts", "import", str(path), stdout=StringIO())

    assert Prompt.objects.count() == 0
