"""Providers: `echo` (offline), OpenAI-compatible HTTP endpoints and Ollama.

A provider never raises for a failed call: the failure comes back as
`ProviderResponse.error` and becomes an error result, so one bad call never ends a run.
HTTP calls time out, and 429/5xx/connection failures are retried with exponential
backoff (honouring Retry-After); the sleep is injectable so tests never wait.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

DEFAULT_TIMEOUT_S = 120.0
OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
OLLAMA_DEFAULT_BASE = "http://localhost:11434"
# Models that only speak the legacy /completions API; every other openai:<model> is chat.
OPENAI_COMPLETION_MODELS = {"gpt-3.5-turbo-instruct", "davinci-002", "babbage-002"}
# Request body keys passed through from a provider's `config`.
OPENAI_BODY_KEYS = {
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice", "n",
}  # fmt: skip


@dataclass
class ProviderResponse:
    output: Any = None
    error: str | None = None
    token_usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False


@dataclass
class RetryPolicy:
    max_retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay_s)
            except ValueError:
                pass
        backoff = self.base_delay_s * (2**attempt)
        return min(backoff + random.uniform(0, self.base_delay_s), self.max_delay_s)  # noqa: S311


def default_retry() -> RetryPolicy:
    """The policy used when a run names none (tests replace this to never sleep)."""
    return RetryPolicy()


class Provider(Protocol):
    id: str
    label: str
    # What the price table calls this provider and model (cost_for's keys).
    pricing_provider: str
    model: str

    def call(self, prompt: str, *, headers: dict[str, str]) -> ProviderResponse: ...


class EchoProvider:
    pricing_provider = "echo"
    model = "echo"

    def __init__(self, provider_id: str, label: str, config: dict[str, Any], **_: Any) -> None:
        self.id, self.label, self.config = provider_id, label, config

    def call(self, prompt: str, *, headers: dict[str, str]) -> ProviderResponse:
        return ProviderResponse(
            output=prompt, token_usage={"total": 0, "prompt": 0, "completion": 0, "cached": 0}
        )


class HttpProvider:
    """Shared HTTP behaviour: one client per provider, timeouts, retries with backoff."""

    pricing_provider = ""

    def __init__(
        self,
        provider_id: str,
        label: str,
        config: dict[str, Any],
        *,
        model: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.id, self.label, self.config, self.model = provider_id, label, config, model
        self.retry = retry or default_retry()
        timeout_ms = config.get("timeout") or os.environ.get("REQUEST_TIMEOUT_MS")
        self.timeout_s = float(timeout_ms) / 1000 if timeout_ms else DEFAULT_TIMEOUT_S
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        # Created on first call, so checking a config opens no connections.
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout_s)
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[Any, str | None]:
        """(decoded JSON, None) on success, (None, error text) once retries are spent."""
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self.client.post(url, json=body, headers=headers)
            except httpx.TimeoutException:
                problem = f"Request to {url} timed out after {self.timeout_s:g} s"
            except httpx.HTTPError as exc:
                problem = f"Request to {url} failed: {exc}"
            else:
                if response.status_code < 400:
                    try:
                        return response.json(), None
                    except ValueError:
                        return None, f"{url} answered {response.status_code} with non-JSON body"
                problem = f"HTTP {response.status_code} from {url}: {response.text[:500]}"
                if response.status_code != 429 and response.status_code < 500:
                    return None, problem
                retry_after = response.headers.get("retry-after")
            if attempt >= self.retry.max_retries:
                retries = f" after {attempt} retries" if attempt else ""
                return None, problem + retries
            self.retry.sleep(self.retry.delay(attempt, retry_after))
            attempt += 1


class OpenAIProvider(HttpProvider):
    pricing_provider = "openai"

    def __init__(self, *args: Any, mode: str = "chat", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.base_url = (
            self.config.get("apiBaseUrl")
            or os.environ.get("OPENAI_BASE_URL")
            or os.environ.get("OPENAI_API_BASE_URL")
            or OPENAI_DEFAULT_BASE
        ).rstrip("/")
        self.api_key = self.config.get("apiKey") or os.environ.get("OPENAI_API_KEY", "")

    def call(self, prompt: str, *, headers: dict[str, str]) -> ProviderResponse:
        if not self.api_key and self.base_url == OPENAI_DEFAULT_BASE:
            return ProviderResponse(error="OPENAI_API_KEY is not set (or set OPENAI_BASE_URL).")
        body: dict[str, Any] = {"model": self.model}
        body.update({k: v for k, v in self.config.items() if k in OPENAI_BODY_KEYS})
        if self.mode == "chat":
            body["messages"] = chat_messages(prompt)
            url = f"{self.base_url}/chat/completions"
        else:
            body["prompt"] = prompt
            url = f"{self.base_url}/completions"
        request_headers = dict(headers)
        if self.api_key:
            request_headers["Authorization"] = f"Bearer {self.api_key}"
        data, error = self.post(url, body, request_headers)
        if error:
            return ProviderResponse(error=error)
        try:
            choice = data["choices"][0]
            if self.mode == "chat":
                message = choice["message"]
                output = message.get("content")
                if output is None and message.get("tool_calls"):
                    output = message["tool_calls"]
            else:
                output = choice["text"]
        except (KeyError, IndexError, TypeError):
            return ProviderResponse(error=f"Unexpected response shape: {json.dumps(data)[:500]}")
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return ProviderResponse(
            output=output if output is not None else "",
            token_usage={
                "total": int(usage.get("total_tokens") or 0),
                "prompt": int(usage.get("prompt_tokens") or 0),
                "completion": int(usage.get("completion_tokens") or 0),
                "cached": int(details.get("cached_tokens") or 0),
            },
        )


class OllamaProvider(HttpProvider):
    pricing_provider = "ollama"

    def __init__(self, *args: Any, mode: str = "completion", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        self.base_url = (
            self.config.get("apiBaseUrl")
            or os.environ.get("OLLAMA_BASE_URL")
            or OLLAMA_DEFAULT_BASE
        ).rstrip("/")

    def call(self, prompt: str, *, headers: dict[str, str]) -> ProviderResponse:
        body: dict[str, Any] = {"model": self.model, "stream": False}
        options = {k: v for k, v in self.config.items() if k not in {"apiBaseUrl", "timeout"}}
        if options:
            body["options"] = options
        if self.mode == "chat":
            body["messages"] = chat_messages(prompt)
            url = f"{self.base_url}/api/chat"
        else:
            body["prompt"] = prompt
            url = f"{self.base_url}/api/generate"
        data, error = self.post(url, body, dict(headers))
        if error:
            return ProviderResponse(error=error)
        if not isinstance(data, dict) or ("response" not in data and "message" not in data):
            return ProviderResponse(error=f"Unexpected response shape: {json.dumps(data)[:500]}")
        output = data.get("response") if self.mode != "chat" else data["message"].get("content")
        prompt_tokens = int(data.get("prompt_eval_count") or 0)
        completion_tokens = int(data.get("eval_count") or 0)
        return ProviderResponse(
            output=output or "",
            token_usage={
                "total": prompt_tokens + completion_tokens,
                "prompt": prompt_tokens,
                "completion": completion_tokens,
                "cached": 0,
            },
        )


def chat_messages(prompt: str) -> list[dict[str, Any]]:
    """promptfoo's rule: a prompt that renders to a JSON list of messages is sent as-is."""
    stripped = prompt.strip()
    if stripped.startswith("["):
        try:
            messages = json.loads(stripped)
        except ValueError:
            messages = None
        if isinstance(messages, list) and all(
            isinstance(m, dict) and "role" in m for m in messages
        ):
            return messages
    return [{"role": "user", "content": prompt}]


ProviderFactory = Callable[..., Provider]


def _echo(provider_id: str, label: str, config: dict, **kwargs: Any) -> Provider:
    if provider_id != "echo":
        raise ValueError("the echo provider takes no model: use plain 'echo'.")
    return EchoProvider(provider_id, label, config)


def _mode_and_model(provider_id: str) -> tuple[str | None, str]:
    """('chat', 'm') for 'x:chat:m'; (None, 'm:tag') for 'x:m:tag'."""
    rest = provider_id.partition(":")[2]
    mode, _, model = rest.partition(":")
    if mode in {"chat", "completion"} and model:
        return mode, model
    return None, rest


def _openai(provider_id: str, label: str, config: dict, **kwargs: Any) -> Provider:
    mode, model = _mode_and_model(provider_id)
    if not model:
        raise ValueError("use openai:chat:<model>, openai:completion:<model> or openai:<model>.")
    mode = mode or ("completion" if model in OPENAI_COMPLETION_MODELS else "chat")
    return OpenAIProvider(provider_id, label, config, model=model, mode=mode, **kwargs)


def _ollama(provider_id: str, label: str, config: dict, **kwargs: Any) -> Provider:
    mode, model = _mode_and_model(provider_id)
    if not model:
        raise ValueError("use ollama:<model>, ollama:chat:<model> or ollama:completion:<model>.")
    return OllamaProvider(
        provider_id, label, config, model=model, mode=mode or "completion", **kwargs
    )


# Keyed by the part of the id before the first colon; register_provider adds more.
FACTORIES: dict[str, ProviderFactory] = {"echo": _echo, "openai": _openai, "ollama": _ollama}


def register_provider(prefix: str, factory: ProviderFactory) -> None:
    FACTORIES[prefix] = factory


def check_provider_id(provider_id: str) -> str | None:
    """Why `provider_id` names no provider this evaluator can run, or None."""
    prefix = provider_id.split(":", 1)[0]
    if prefix not in FACTORIES:
        known = ", ".join(sorted(FACTORIES))
        return f"unknown provider {provider_id!r}; known prefixes: {known}."
    try:
        build_provider(provider_id, provider_id, {})
    except ValueError as exc:
        return f"{provider_id!r}: {exc}"
    return None


def build_provider(
    provider_id: str, label: str, config: dict[str, Any], *, retry: RetryPolicy | None = None
) -> Provider:
    factory = FACTORIES[provider_id.split(":", 1)[0]]
    return factory(provider_id, label, config, retry=retry)
