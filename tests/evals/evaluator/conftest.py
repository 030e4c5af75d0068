from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evals.evaluator import providers


@dataclass
class FakeLLM:
    """An OpenAI-compatible (and Ollama-compatible) server on loopback.

    `script` holds (status, body) answers to give before the default one, in order.
    """

    url: str = ""
    requests: list[dict] = field(default_factory=list)
    script: list[tuple[int, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        if path.endswith("/chat/completions"):
            content = body["messages"][-1]["content"]
            return 200, {
                "choices": [{"message": {"role": "assistant", "content": f"Reply: {content}"}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
            }
        if path.endswith("/completions"):
            return 200, {"choices": [{"text": f"Reply: {body['prompt']}"}], "usage": {}}
        if path.endswith("/api/generate"):
            return 200, {
                "response": f"Ollama: {body['prompt']}",
                "prompt_eval_count": 7,
                "eval_count": 3,
            }
        if path.endswith("/api/chat"):
            content = body["messages"][-1]["content"]
            return 200, {"message": {"role": "assistant", "content": f"Ollama: {content}"}}
        return 404, {"error": "not found"}


@pytest.fixture
def fake_llm(monkeypatch) -> Iterator[FakeLLM]:
    fake = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with fake.lock:
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
            status, answer = fake.answer(self.path, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OLLAMA_BASE_URL", fake.url)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch) -> list[float]:
    """Retries happen at once in tests; the delays they would have slept are recorded."""
    delays: list[float] = []
    monkeypatch.setattr(
        providers, "default_retry", lambda: providers.RetryPolicy(sleep=delays.append)
    )
    return delays


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
