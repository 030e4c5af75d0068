from __future__ import annotations

import pytest

from evals.evaluator.providers import RetryPolicy, build_provider, chat_messages, check_provider_id

TRACEPARENT = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def test_echo_returns_the_rendered_prompt():
    response = build_provider("echo", "echo", {}).call("Hello", headers={})
    assert (response.output, response.error) == ("Hello", None)


def test_openai_chat_sends_messages_and_reads_usage(fake_llm):
    provider = build_provider("openai:chat:gpt-4o-mini", "mini", {"temperature": 0, "unknown": 1})
    response = provider.call("Hi there", headers=TRACEPARENT)
    assert response.error is None
    assert response.output == "Reply: Hi there"
    assert response.token_usage == {"total": 1500, "prompt": 1000, "completion": 500, "cached": 0}
    (request,) = fake_llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"] == {
        "model": "gpt-4o-mini", "temperature": 0,
        "messages": [{"role": "user", "content": "Hi there"}],
    }  # fmt: skip
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["traceparent"] == TRACEPARENT["traceparent"]


def test_openai_short_ids_pick_chat_or_completion(fake_llm):
    assert build_provider("openai:gpt-4o", "x", {}).call("a", headers={}).output == "Reply: a"
    legacy = build_provider("openai:gpt-3.5-turbo-instruct", "x", {}).call("b", headers={})
    assert legacy.output == "Reply: b"
    assert [r["path"] for r in fake_llm.requests] == ["/v1/chat/completions", "/v1/completions"]


def test_a_prompt_that_renders_to_a_message_list_is_sent_as_messages():
    messages = '[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]'
    assert chat_messages(messages)[0] == {"role": "system", "content": "Be brief"}
    assert chat_messages("[not json") == [{"role": "user", "content": "[not json"}]


def test_429_is_retried_with_backoff_then_succeeds(fake_llm):
    fake_llm.script = [(429, {"error": "slow down"}), (503, {"error": "busy"})]
    delays: list[float] = []
    provider = build_provider(
        "openai:chat:gpt-4o-mini", "x", {}, retry=RetryPolicy(base_delay_s=1, sleep=delays.append)
    )
    response = provider.call("Hi", headers={})
    assert response.error is None and response.output == "Reply: Hi"
    assert len(fake_llm.requests) == 3
    assert 1 <= delays[0] < 2 <= delays[1] < 3  # exponential, with jitter


def test_a_persistent_500_becomes_an_error_after_the_retries(fake_llm):
    fake_llm.script = [(500, {"error": "boom"})] * 3
    provider = build_provider(
        "openai:chat:gpt-4o-mini", "x", {}, retry=RetryPolicy(max_retries=2, sleep=lambda s: None)
    )
    response = provider.call("Hi", headers={})
    assert response.error.startswith("HTTP 500 from ")
    assert response.error.endswith("after 2 retries")
    assert len(fake_llm.requests) == 3


def test_client_errors_are_not_retried(fake_llm):
    fake_llm.script = [(400, {"error": "bad request"})]
    response = build_provider("openai:chat:gpt-4o-mini", "x", {}).call("Hi", headers={})
    assert "HTTP 400" in response.error
    assert len(fake_llm.requests) == 1


def test_an_unreachable_endpoint_is_an_error_not_an_exception(monkeypatch, fake_llm):
    provider = build_provider(
        "openai:chat:gpt-4o-mini", "x", {"apiBaseUrl": "http://127.0.0.1:9"},
        retry=RetryPolicy(max_retries=1, sleep=lambda s: None),
    )  # fmt: skip
    response = provider.call("Hi", headers={})
    assert "failed" in response.error


def test_openai_without_a_key_or_base_url_says_what_to_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE_URL", raising=False)
    response = build_provider("openai:chat:gpt-4o-mini", "x", {}).call("Hi", headers={})
    assert "OPENAI_API_KEY" in response.error


def test_ollama_generate_and_chat(fake_llm):
    generated = build_provider("ollama:llama3", "x", {"temperature": 0.1}).call("Hi", headers={})
    assert generated.output == "Ollama: Hi"
    assert generated.token_usage == {"total": 10, "prompt": 7, "completion": 3, "cached": 0}
    chatted = build_provider("ollama:chat:llama3", "x", {}).call("Yo", headers={})
    assert chatted.output == "Ollama: Yo"
    first, second = fake_llm.requests
    assert first["path"] == "/api/generate"
    assert first["body"] == {
        "model": "llama3",
        "stream": False,
        "prompt": "Hi",
        "options": {"temperature": 0.1},
    }
    assert second["path"] == "/api/chat"


@pytest.mark.parametrize(
    ("provider_id", "problem"),
    [
        ("echo", None),
        ("openai:chat:gpt-4o", None),
        ("ollama:llama3:8b", None),
        ("echo:model", "takes no model"),
        ("openai:", "use openai:chat:<model>"),
        ("anthropic:claude", "unknown provider"),
    ],
)
def test_provider_ids_are_checked_when_the_config_loads(provider_id, problem):
    found = check_provider_id(provider_id)
    assert (found is None) if problem is None else (problem in found)
