from __future__ import annotations

import json
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import OperationalError

from evals.evaluator import providers
from evals.models import Eval, EvalPromptStats, EvalResult, EvalStatus, FailureReason
from tracing.models import Trace

pytestmark = pytest.mark.django_db

EXAMPLES = Path(settings.BASE_DIR) / "examples"


def run(*args, **options) -> str:
    out = StringIO()
    call_command("eval", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def the_eval() -> Eval:
    return Eval.objects.get()


def assert_stats_match_a_recomputation(eval_: Eval) -> None:
    """The aggregates kept batch by batch equal what the stored rows add up to."""
    for stats in EvalPromptStats.objects.filter(eval=eval_):
        rows = list(EvalResult.objects.filter(eval=eval_, prompt_idx=stats.prompt_idx))
        named: Counter = Counter()
        for row in rows:
            named.update(row.named_scores)
        components = [
            c for row in rows for c in (row.grading_result or {}).get("componentResults", [])
        ]
        assert stats.result_count == len(rows)
        assert stats.pass_count == sum(row.success for row in rows)
        assert stats.error_count == sum(row.failure_reason == FailureReason.ERROR for row in rows)
        assert stats.fail_count == len(rows) - stats.pass_count - stats.error_count
        assert stats.score_sum == pytest.approx(sum(row.score for row in rows))
        assert stats.cost_sum == pytest.approx(sum(row.cost for row in rows))
        assert stats.latency_sum_ms == sum(row.latency_ms for row in rows)
        assert stats.assert_pass_count == sum(bool(c["pass"]) for c in components)
        assert stats.assert_fail_count == sum(not c["pass"] for c in components)
        assert stats.token_total == sum(
            (row.response or {}).get("tokenUsage", {}).get("total", 0) for row in rows
        )
        assert {k: pytest.approx(v) for k, v in stats.named_score_sums.items()} == dict(named)


def test_it_runs_the_basics_example_and_stores_it_through_the_write_path():
    output = run(str(EXAMPLES / "echo-basics.yaml"), max_concurrency=3)
    eval_ = the_eval()
    assert eval_.status == EvalStatus.COMPLETE
    assert eval_.duration_ms is not None
    assert eval_.description.startswith("Echo basics")
    assert f"Stored as {eval_.id} (6 results)" in output
    assert "3 passed, 3 failed, 0 errors" in output
    assert list(eval_.eval_prompts.values_list("label", "provider")) == [
        ("Translate to French: {{text}}", "echo"), ("shouting", "echo"),
    ]  # fmt: skip
    assert {str(tag) for tag in eval_.tags.all()} == {"example=echo-basics"}
    assert eval_.datasets.get().tests[0]["description"] == "greeting"
    result = EvalResult.objects.get(eval=eval_, test_idx=0, prompt_idx=1)
    assert result.success is True
    assert result.prompt == {"raw": "Say it loudly: HELLO, WORLD", "label": "shouting"}
    assert result.response["output"] == "Say it loudly: HELLO, WORLD"
    assert result.test_case["vars"] == {"text": "Hello, world"}
    failed = EvalResult.objects.get(eval=eval_, test_idx=2, prompt_idx=0)
    assert (failed.success, failed.failure_reason) == (False, FailureReason.ASSERT)
    assert failed.score == pytest.approx(1 / 3)
    assert_stats_match_a_recomputation(eval_)


def test_named_scores_example_stores_metrics_and_repeats():
    run(str(EXAMPLES / "echo-named-scores.yaml"), repeat=2, verbosity=0)
    eval_ = the_eval()
    assert EvalResult.objects.filter(eval=eval_).count() == 8
    assert eval_.config["evaluateOptions"]["repeat"] == 2
    # repeat numbers copies consecutively: the third test is testIdx 4 and 5.
    threshold_case = EvalResult.objects.get(eval=eval_, test_idx=4)
    assert threshold_case.success is True
    assert threshold_case.named_scores == {"accuracy": 1.0, "tone": 0.0}
    stats = EvalPromptStats.objects.get(eval=eval_)
    assert stats.pass_count == 4 and stats.fail_count == 4
    assert set(stats.named_score_sums) == {"accuracy", "relevance", "tone", "length", "format"}
    assert_stats_match_a_recomputation(eval_)


def test_no_write_prints_a_table_and_stores_nothing():
    output = run(str(EXAMPLES / "echo-basics.yaml"), no_write=True)
    assert not Eval.objects.exists()
    assert "[PASS 1.00] Say it loudly: HELLO" in output
    assert "[FAIL 0.33] Translate to French: go" in output
    assert "6/6 100%" in output


def test_verbosity_zero_shows_no_progress_bar():
    assert "6/6" not in run(str(EXAMPLES / "echo-basics.yaml"), verbosity=0)


def test_output_file_holds_promptfoos_envelope(tmp_path):
    target = tmp_path / "out.json"
    run(str(EXAMPLES / "echo-basics.yaml"), output=str(target))
    data = json.loads(target.read_text())
    eval_ = the_eval()
    assert data["evalId"] == eval_.id
    assert data["shareableUrl"] is None
    assert data["results"]["version"] == 3
    assert data["results"]["stats"]["successes"] == 3
    assert data["results"]["stats"]["failures"] == 3
    assert [p["label"] for p in data["results"]["prompts"]] == [
        "Translate to French: {{text}}",
        "shouting",
    ]
    assert data["results"]["prompts"][0]["metrics"]["testPassCount"] == 2
    assert len(data["results"]["results"]) == 6
    assert data["config"]["providers"] == [{"id": "echo", "label": "echo", "config": {}}]


def test_a_bad_config_is_reported_with_key_paths(write_config):
    path = write_config(
        "prompts: ['{{x}}']\nproviders: [echo]\ntests: [{assert: [{type: nope}]}]\n"
    )
    with pytest.raises(CommandError) as caught:
        run(str(path))
    assert "tests[0].assert[0].type: unknown assertion type 'nope'" in str(caught.value)
    assert not Eval.objects.exists()


def test_unknown_keys_are_warned_about(write_config):
    path = write_config("prompts: [hi]\nproviders: [echo]\nsurprise: 1\n")
    err = StringIO()
    call_command("eval", str(path), stdout=StringIO(), stderr=err)
    assert "warning: surprise: unknown key; ignored." in err.getvalue()


def test_an_openai_compatible_endpoint_records_tokens_cost_errors_and_traces(
    fake_llm, write_config
):
    # Calls in order (one at a time): the second test is rate limited once, the third always fails.
    fake_llm.script = [(200, _chat("ok 0")), (429, {"error": "slow"}), (200, _chat("ok 1"))]
    fake_llm.script += [(500, {"error": "boom"})] * 5
    path = write_config(
        """
prompts: ["Q: {{q}}"]
providers: [openai:chat:gpt-4o-mini]
tests:
  - vars: {q: one}
    assert: [{type: cost, threshold: 0.01}, {type: contains, value: ok}]
  - vars: {q: two}
    assert: [{type: contains, value: ok}]
  - vars: {q: three}
"""
    )
    run(str(path), max_concurrency=1)
    eval_ = the_eval()
    first, second, third = EvalResult.objects.filter(eval=eval_).order_by("test_idx")
    assert first.success is True
    assert first.response["tokenUsage"] == {
        "total": 15,
        "prompt": 10,
        "completion": 5,
        "cached": 0,
        "numRequests": 1,
    }
    assert first.cost == pytest.approx((10 * 0.15 + 5 * 0.60) / 1_000_000)
    assert second.success is True and second.response["output"] == "ok 1"
    assert (third.success, third.failure_reason) == (False, FailureReason.ERROR)
    assert third.error.startswith("HTTP 500") and third.error.endswith("after 4 retries")
    assert eval_.status == EvalStatus.COMPLETE
    assert_stats_match_a_recomputation(eval_)

    # Each provider call carried its span's traceparent; the result names that trace.
    sent = [r["headers"]["traceparent"].split("-")[1] for r in fake_llm.requests]
    assert sent[0] == first.metadata["traceId"]
    trace = Trace.objects.get(trace_id=first.metadata["traceId"])
    assert (trace.eval_id, trace.result_id, trace.test_case_id) == (eval_.id, first.pk, "0:0")
    assert sorted(trace.spans.values_list("name", flat=True)) == [
        "assertions", "call openai:chat:gpt-4o-mini", "render", "test case",
    ]  # fmt: skip
    assert Trace.objects.filter(eval=eval_, result__isnull=False).count() == 3


def _chat(content: str) -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class InterruptingEcho(providers.EchoProvider):
    """Echo that behaves like Ctrl-C once, on its `interrupt_on`-th call."""

    calls = 0
    interrupt_on = 4

    def call(self, prompt, *, headers):
        type(self).calls += 1
        if type(self).calls == self.interrupt_on:
            raise KeyboardInterrupt
        return super().call(prompt, headers=headers)


def test_ctrl_c_marks_the_eval_interrupted_and_resume_stores_no_duplicates(
    monkeypatch, write_config
):
    monkeypatch.setitem(
        providers.FACTORIES,
        "interrupting",
        lambda i, label, config, **kw: InterruptingEcho(i, label, config),
    )
    path = write_config(
        """
prompts: ["A {{n}}", "B {{n}}"]
providers: [interrupting]
tests:
  - vars: {n: [1, 2, 3, 4, 5]}
    assert: [{type: contains, value: "1", metric: ones}]
"""
    )
    with pytest.raises(CommandError) as caught:
        run(str(path), max_concurrency=1)
    eval_ = the_eval()
    assert caught.value.returncode == 130
    assert f"manage.py eval --resume {eval_.id}" in str(caught.value)
    assert eval_.status == EvalStatus.INTERRUPTED
    stored_before = EvalResult.objects.filter(eval=eval_).count()
    assert 3 <= stored_before < 10
    assert_stats_match_a_recomputation(eval_)

    output = run(resume=eval_.id)
    assert f"Resuming {eval_.id}: {stored_before} results already stored." in output
    eval_.refresh_from_db()
    assert eval_.status == EvalStatus.COMPLETE
    pairs = list(EvalResult.objects.filter(eval=eval_).values_list("test_idx", "prompt_idx"))
    assert sorted(pairs) == [(t, p) for t in range(5) for p in range(2)]
    assert_stats_match_a_recomputation(eval_)
    assert EvalPromptStats.objects.get(eval=eval_, prompt_idx=0).named_score_sums == {"ones": 1.0}


def test_resume_refuses_a_complete_eval_and_a_missing_one():
    run(str(EXAMPLES / "echo-basics.yaml"), verbosity=0)
    with pytest.raises(CommandError, match="already complete"):
        run(resume=the_eval().id)
    with pytest.raises(CommandError, match="No eval 'eval-nope'"):
        run(resume="eval-nope")


def test_a_config_or_resume_is_required():
    with pytest.raises(CommandError, match="Give a config file"):
        run()


def test_no_write_can_still_write_promptfoos_envelope(tmp_path):
    target = tmp_path / "out.json"
    run(str(EXAMPLES / "echo-named-scores.yaml"), no_write=True, output=str(target))
    assert not Eval.objects.exists()
    data = json.loads(target.read_text())
    assert data["evalId"] is None
    assert data["results"]["stats"]["successes"] == 2
    metrics = data["results"]["prompts"][0]["metrics"]
    assert metrics["namedScoresCount"]["accuracy"] == 3
    assert [r["testIdx"] for r in data["results"]["results"]] == [0, 1, 2, 3]


def test_an_unsupported_output_format_is_refused_before_running(tmp_path):
    with pytest.raises(CommandError, match=r"must end in one of \.json, \.jsonl"):
        run(str(EXAMPLES / "echo-basics.yaml"), no_write=True, output=str(tmp_path / "out.html"))


def disk_full(*args, **kwargs):
    raise OperationalError("database or disk is full")


def test_a_full_disk_before_the_eval_exists_is_a_command_error(monkeypatch):
    monkeypatch.setattr("evals.management.commands.eval.create_eval", disk_full)
    with pytest.raises(CommandError, match="out of space; no eval was created"):
        run(str(EXAMPLES / "echo-basics.yaml"), verbosity=0)


def test_a_full_disk_mid_run_keeps_the_first_error_and_says_how_to_resume(monkeypatch):
    monkeypatch.setattr("evals.evaluator.runner.Runner.run", disk_full)
    monkeypatch.setattr("evals.management.commands.eval.complete_eval", disk_full)
    with pytest.raises(
        CommandError, match="out of space; results stored so far are kept"
    ) as caught:
        run(str(EXAMPLES / "echo-basics.yaml"), verbosity=0)
    assert f"manage.py eval --resume {the_eval().id}" in str(caught.value)
