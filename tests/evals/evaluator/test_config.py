from __future__ import annotations

import pytest

from evals.evaluator.config import ConfigError, load_config, parse_config
from evals.evaluator.runner import build_jobs, columns, prompt_columns


def parse(data, tmp_path):
    return parse_config(data, base_dir=tmp_path)


def test_it_reads_the_common_promptfoo_shape(write_config):
    path = write_config(
        """
description: demo
prompts:
  - "Hi {{name}}"
  - {raw: "Bye {{name}}", label: farewell}
providers:
  - echo
  - id: openai:chat:gpt-4o-mini
    label: mini
    config: {temperature: 0}
defaultTest:
  vars: {name: Ada}
  assert: [{type: contains, value: Ada}]
tests:
  - vars: {name: Bob}
    assert: [{type: icontains, value: bob}]
    metadata: {area: greeting}
  - description: default vars only
tags: {team: evals}
evaluateOptions: {maxConcurrency: 2, repeat: 3}
"""
    )
    config = load_config(path)
    assert config.description == "demo"
    assert [p.label for p in config.prompts] == ["Hi {{name}}", "farewell"]
    assert [(p.id, p.label, p.config) for p in config.providers] == [
        ("echo", "echo", {}),
        ("openai:chat:gpt-4o-mini", "mini", {"temperature": 0}),
    ]
    assert config.tags == {"team": "evals"}
    assert (config.max_concurrency, config.repeat) == (2, 3)
    assert config.warnings == []


def test_it_reports_every_problem_with_its_key_path(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse(
            {
                "prompts": ["{{ broken"],
                "providers": ["nope:model", {"label": "no id"}],
                "tests": [
                    {"assert": [{"type": "javascript", "value": "1"}]},
                    {"assert": [{"type": "contains"}, {"type": "latency"}, {"value": "x"}]},
                    {"vars": ["not", "a", "mapping"]},
                ],
                "evaluateOptions": {"repeat": 0},
            },
            tmp_path,
        )
    errors = caught.value.errors
    assert any(e.startswith("prompts[0]: template error") for e in errors)
    assert any(e.startswith("providers[0]: unknown provider 'nope:model'") for e in errors)
    assert "providers[1].id: required: a provider id string." in errors
    assert any(e.startswith("tests[0].assert[0].type: javascript") for e in errors)
    assert "tests[1].assert[0].value: contains needs a value." in errors
    assert "tests[1].assert[1].threshold: latency needs a threshold." in errors
    assert any(e.startswith("tests[1].assert[2].type: required") for e in errors)
    assert "tests[2].vars: must be a mapping of variable names to values." in errors
    assert "evaluateOptions.repeat: must be a whole number of at least 1." in errors


def test_it_warns_about_unknown_keys_instead_of_dropping_them_silently(tmp_path):
    config = parse(
        {
            "prompts": ["x"],
            "providers": [{"id": "echo", "transform": "x"}],
            "tests": [
                {"vars": {}, "expected": 1, "assert": [{"type": "equals", "value": "x", "foo": 1}]}
            ],
            "sharing": False,
            "mystery": 1,
        },
        tmp_path,
    )
    assert config.warnings == [
        "sharing: not supported by this evaluator; ignored.",
        "mystery: unknown key; ignored.",
        "providers[0].transform: unknown key; ignored.",
        "tests[0].expected: unknown key; ignored.",
        "tests[0].assert[0].foo: unknown key; ignored.",
    ]


def test_file_references_are_resolved_so_the_stored_config_stands_alone(tmp_path, write_config):
    (tmp_path / "prompts.txt").write_text("First {{x}}\n---\nSecond {{x}}\n")
    (tmp_path / "tests.yaml").write_text("- vars: {x: file://value.txt}\n")
    (tmp_path / "value.txt").write_text("from a file")
    (tmp_path / "check.py").write_text("def get_assert(output, context):\n    return True\n")
    path = write_config(
        """
prompts: [file://prompts.txt]
providers: [echo]
tests: file://tests.yaml
defaultTest:
  assert: [{type: python, value: "file://check.py"}]
"""
    )
    config = load_config(path)
    assert [p.raw for p in config.prompts] == ["First {{x}}", "Second {{x}}"]
    assert config.tests[0]["vars"] == {"x": "from a file"}
    assert config.default_test["assert"][0]["value"] == f"file://{tmp_path / 'check.py'}"
    again = parse(config.to_dict(), tmp_path / "elsewhere")
    assert again.to_dict() == config.to_dict()


def test_a_missing_file_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse({"prompts": ["file://missing.txt"], "providers": ["echo"]}, tmp_path)
    assert caught.value.errors[0].startswith("prompts[0]: cannot read")


def test_an_unreadable_or_malformed_file_is_a_config_error(write_config):
    with pytest.raises(ConfigError, match="not valid"):
        load_config(write_config("prompts: [unclosed", "bad.yaml"))


def test_jobs_are_numbered_like_promptfoo_providers_outer_prompts_inner(tmp_path):
    config = parse(
        {
            "prompts": ["a {{x}}", "b {{x}}"],
            "providers": ["echo", {"id": "echo", "label": "echo-2"}],
            "defaultTest": {"vars": {"y": 1}, "assert": [{"type": "contains", "value": "a"}]},
            "tests": [{"vars": {"x": [1, 2]}}, {"vars": {"x": 3}, "threshold": 0.5}],
            "evaluateOptions": {"repeat": 2},
        },
        tmp_path,
    )
    assert [(c.prompt_idx, c.prompt.raw, c.provider.label) for c in columns(config)] == [
        (0, "a {{x}}", "echo"), (1, "b {{x}}", "echo"),
        (2, "a {{x}}", "echo-2"), (3, "b {{x}}", "echo-2"),
    ]  # fmt: skip
    assert prompt_columns(config)[2] == {"raw": "a {{x}}", "label": "a {{x}}", "provider": "echo-2"}
    jobs = list(build_jobs(config))
    # test 0 expands x=[1,2] into two cases, each repeated twice; test 1 is repeated twice.
    assert len(jobs) == 6 * 4
    assert [j.test["vars"]["x"] for j in jobs if j.column.prompt_idx == 0] == [1, 2, 1, 2, 3, 3]
    assert sorted({j.test_idx for j in jobs}) == list(range(6))
    last = jobs[-1].test
    assert last["vars"] == {"y": 1, "x": 3}
    assert last["assert"] == [{"type": "contains", "value": "a"}]
    assert last["threshold"] == 0.5
