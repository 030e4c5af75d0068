from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count, Q, Sum
from django.utils import timezone

from alchemy_site.errors import Conflict, Invalid, TooLarge
from evals import services
from evals.models import (
    Dataset,
    Eval,
    EvalPrompt,
    EvalPromptStats,
    EvalResult,
    EvalStatus,
    EvalTag,
    PromptText,
    Tag,
)
from evals.signal import read_signal
from tests.evals.factories import grid, make_eval, prompt, result

pytestmark = pytest.mark.django_db


def recomputed(eval_id: str) -> dict[int, dict]:
    """Aggregates recomputed from the result rows, independently of the write path."""
    out = {}
    rows = EvalResult.objects.filter(eval_id=eval_id)
    for row in rows.values("prompt_idx").annotate(
        n=Count("id"),
        passes=Count("id", filter=Q(success=True)),
        errors=Count("id", filter=Q(success=False, failure_reason=2)),
        score=Sum("score"),
        latency=Sum("latency_ms"),
        cost=Sum("cost"),
    ):
        out[row["prompt_idx"]] = {
            "result_count": row["n"],
            "pass_count": row["passes"],
            "error_count": row["errors"],
            "fail_count": row["n"] - row["passes"] - row["errors"],
            "score_sum": pytest.approx(row["score"]),
            "latency_sum_ms": row["latency"],
            "cost_sum": pytest.approx(row["cost"]),
            "assert_pass_count": 0,
            "assert_fail_count": 0,
            "token_total": 0,
        }
    for row in rows.only("prompt_idx", "grading_result", "response"):
        components = (row.grading_result or {}).get("componentResults") or []
        out[row.prompt_idx]["assert_pass_count"] += sum(1 for c in components if c["pass"])
        out[row.prompt_idx]["assert_fail_count"] += sum(1 for c in components if not c["pass"])
        out[row.prompt_idx]["token_total"] += (
            (row.response or {}).get("tokenUsage", {}).get("total", 0)
        )
    return out


def stored(eval_id: str) -> dict[int, dict]:
    keys = next(iter(recomputed(eval_id).values())).keys()
    return {
        s.prompt_idx: {k: getattr(s, k) for k in keys}
        for s in EvalPromptStats.objects.filter(eval_id=eval_id, result_count__gt=0)
    }


def test_create_eval_reuses_prompt_dataset_and_tag_rows():
    first = make_eval(tests=3, tags={"team": "ml"})
    second = make_eval(tests=3, tags={"team": "ml"})
    assert first.id != second.id
    assert PromptText.objects.count() == 2
    assert Dataset.objects.count() == 1
    assert Tag.objects.count() == 1
    assert EvalTag.objects.count() == 2
    assert first.vars == ["word"]
    assert list(EvalPrompt.objects.filter(eval=first).values_list("prompt_idx", "provider")) == [
        (0, "p0"),
        (1, "p1"),
    ]


def test_prompt_texts_share_the_registry_content_hash():
    make_eval(prompts=1)
    text = PromptText.objects.get()
    import hashlib

    assert text.content_hash == hashlib.sha256(text.text.encode()).hexdigest() == text.id


def test_new_eval_ids_look_like_promptfoos():
    eval_id = services.new_eval_id(datetime(2025, 1, 13, 10, 30, 45, tzinfo=UTC))
    assert eval_id.startswith("eval-") and eval_id.endswith("-2025-01-13T10:30:45")
    assert len(eval_id.split("-")[1]) == 3


def test_create_eval_keeps_a_given_id_and_refuses_it_twice():
    make_eval(id="eval-abc-2025-01-13T10:30:45")
    with pytest.raises(Conflict):
        make_eval(id="eval-abc-2025-01-13T10:30:45")
    assert Eval.objects.count() == 1


@pytest.mark.parametrize("bad_id", ["", "eval/abc", "eval abc"])
def test_create_eval_rejects_ids_unusable_in_urls(bad_id):
    with pytest.raises(Invalid):
        make_eval(id=bad_id)


def test_add_results_stores_a_batch_and_signals_after_commit(django_capture_on_commit_callbacks):
    eval_ = make_eval()
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.add_results(eval=eval_, results=grid(3))
    assert outcome == services.AddResultsOutcome(stored=6, skipped=0)
    assert read_signal()[0] == eval_.id
    assert EvalResult.objects.filter(eval=eval_).count() == 6


def test_add_results_skips_pairs_already_stored_so_resuming_is_safe():
    eval_ = make_eval()
    services.add_results(eval=eval_, results=grid(2))
    outcome = services.add_results(eval=eval_, results=grid(4))
    assert outcome == services.AddResultsOutcome(stored=4, skipped=4)
    assert EvalPromptStats.objects.get(eval=eval_, prompt_idx=0).result_count == 4


def test_a_bad_result_names_its_index_and_field_and_nothing_is_stored():
    eval_ = make_eval()
    batch = grid(3)
    batch[4]["score"] = "high"
    with pytest.raises(Invalid) as caught:
        services.add_results(eval=eval_, results=batch)
    assert caught.value.details == {"index": 4, "field": "score"}
    assert not EvalResult.objects.exists()
    assert EvalPromptStats.objects.get(eval=eval_, prompt_idx=0).result_count == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("testIdx", -1),
        ("testIdx", 2**31),  # beyond the 32-bit column
        ("promptIdx", "0"),
        ("promptIdx", True),
        ("success", "yes"),
        ("failureReason", 7),
        ("response", []),
        ("score", 10**400),  # no float holds it
        ("score", float("inf")),
        ("cost", False),
        ("latencyMs", 2**31),
    ],
)
def test_each_malformed_field_is_reported(field, value):
    eval_ = make_eval()
    bad = result(0)
    bad[field] = value
    with pytest.raises(Invalid) as caught:
        services.add_results(eval=eval_, results=[result(1), bad])
    assert caught.value.details == {"index": 1, "field": field}


def test_a_batch_over_the_limit_is_too_large(settings):
    settings.RESULTS_BATCH_LIMIT = 3
    with pytest.raises(TooLarge):
        services.add_results(eval=make_eval(), results=grid(2))


def test_aggregates_equal_a_recomputation_after_mixed_batches_and_ratings():
    eval_ = make_eval()
    services.add_results(eval=eval_, results=grid(5, success=True))
    services.add_results(
        eval=eval_,
        results=[result(t, p, success=False, score=0.25) for t in range(5, 9) for p in range(2)],
    )
    services.add_results(
        eval=eval_,
        results=[
            result(9, 0, success=False, error="boom", failure_reason=2, components=[]),
            result(9, 1, components=[{"pass": True}, {"pass": False}, {"pass": True}]),
        ],
    )
    rated = EvalResult.objects.get(eval=eval_, test_idx=6, prompt_idx=0)
    services.rate_result(eval=eval_, result_id=rated.pk, passed=True, reason="looks right")
    services.rate_result(eval=eval_, result_id=rated.pk, passed=False, reason="on reflection no")
    flipped = EvalResult.objects.get(eval=eval_, test_idx=1, prompt_idx=1)
    services.rate_result(eval=eval_, result_id=flipped.pk, passed=False)
    assert stored(eval_.id) == recomputed(eval_.id)
    assert EvalPromptStats.objects.get(eval=eval_, prompt_idx=0).error_count == 1


def test_a_rating_is_a_human_component_result():
    eval_ = make_eval()
    services.add_results(eval=eval_, results=[result(0, success=False)])
    row = EvalResult.objects.get()
    services.rate_result(eval=eval_, result_id=row.pk, passed=True, reason="fine by me")
    row.refresh_from_db()
    assert row.success and row.score == 1.0
    human = row.grading_result["componentResults"][-1]
    assert human["assertion"]["type"] == "human" and human["reason"] == "fine by me"


def test_named_scores_are_summed_with_their_weights():
    eval_ = make_eval(prompts=1)
    services.add_results(
        eval=eval_,
        results=[
            result(0, named_scores={"clarity": 0.5}),
            result(1, named_scores={"clarity": 1.0}),
        ],
    )
    stats = EvalPromptStats.objects.get(eval=eval_)
    assert stats.named_score_sums == {"clarity": 1.5}
    assert stats.named_score_weights == {"clarity": 2.0}


def test_vars_grow_with_the_results_when_no_tests_were_given():
    eval_ = make_eval(prompts=1)
    services.add_results(eval=eval_, results=[result(0, vars={"a": 1, "b": 2})])
    eval_.refresh_from_db()
    assert eval_.vars == ["a", "b"]


def test_complete_eval_sets_status_and_duration_and_refuses_later_results():
    eval_ = make_eval()
    services.complete_eval(eval=eval_, duration_ms=1234)
    eval_.refresh_from_db()
    assert (eval_.status, eval_.duration_ms) == (EvalStatus.COMPLETE, 1234)
    with pytest.raises(Conflict):
        services.add_results(eval=eval_, results=grid(1))


def test_a_quiet_running_eval_is_shown_interrupted_and_resumes(settings):
    settings.EVAL_IDLE_INTERRUPTED_SECONDS = 60
    eval_ = make_eval()
    later = timezone.now() + timedelta(seconds=61)
    assert services.effective_status(eval_) == EvalStatus.RUNNING
    assert services.effective_status(eval_, now=later) == EvalStatus.INTERRUPTED
    services.complete_eval(eval=eval_, status=EvalStatus.INTERRUPTED)
    services.add_results(eval=eval_, results=grid(1))
    eval_.refresh_from_db()
    assert eval_.status == EvalStatus.RUNNING


def test_delete_eval_removes_everything_but_shared_rows():
    eval_ = make_eval(tests=2, tags={"a": "b"})
    services.add_results(eval=eval_, results=grid(2))
    services.delete_eval(eval=eval_)
    assert not Eval.objects.exists()
    assert not EvalResult.objects.exists()
    assert not EvalPromptStats.objects.exists()
    assert PromptText.objects.count() == 2 and Tag.objects.count() == 1


def test_delete_eval_keeps_its_traces():
    from tracing.models import Trace

    eval_ = make_eval()
    services.add_results(eval=eval_, results=grid(1))
    fields = {f.name for f in Trace._meta.get_fields()}
    kwargs = {"eval": eval_}
    if "result" in fields:
        kwargs["result"] = EvalResult.objects.first()
    if "trace_id" in fields:
        kwargs["trace_id"] = "0" * 32
    trace = Trace.objects.create(**kwargs)
    services.delete_eval(eval=eval_)
    trace.refresh_from_db()
    assert trace.eval_id is None


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"config": {"t": float("nan")}}, "config.t"),
        ({"config": {"a": [1, {"b": float("inf")}]}}, "config.a[1].b"),
        ({"tests": [{"vars": {"x": float("-inf")}}]}, "tests[0].vars.x"),
        (
            {"prompts": [prompt(), {**prompt(), "temperature": float("nan")}]},
            "prompts[1].temperature",
        ),
    ],
)
def test_create_eval_refuses_non_finite_numbers_naming_where(kwargs, path):
    with pytest.raises(Invalid) as caught:
        services.create_eval(**{"config": {}, "prompts": [prompt()], **kwargs})
    assert caught.value.details["field"] == path
    assert not Eval.objects.exists()


def test_writes_publish_the_eval_to_other_servers_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr("evals.live.publish_update", published.append)
    eval_ = make_eval()
    with django_capture_on_commit_callbacks(execute=True):
        services.add_results(eval=eval_, results=grid(1))
        row = EvalResult.objects.filter(eval=eval_).first()
        services.rate_result(eval=eval_, result_id=row.pk, passed=True, reason="ok", author="a")
        services.complete_eval(eval=eval_)
        services.delete_eval(eval=eval_)
    assert published == [eval_.id] * 4


def test_create_eval_validates_prompts():
    with pytest.raises(Invalid) as caught:
        services.create_eval(config={}, prompts=[prompt(), {"label": "no raw"}])
    assert caught.value.details["index"] == 1
