from __future__ import annotations

import pytest

from tracing.redaction import REDACTED, clean_attributes


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "http.request.header.cookie",
        "auth_token",
        "x-api-key",
        "apiKey",
        "OPENAI_API_KEY",
        "client_secret",
        "db.password",
        "ssh.passphrase",
        "private-key",
        "privateKey",
        "set-cookie",
        "sessionToken",
        "refresh_tokens",
    ],
)
def test_sensitive_keys_are_redacted_whatever_their_case_or_separators(key):
    assert clean_attributes({key: "s3cr3t"}) == {key: REDACTED}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gen_ai.usage.input_tokens", 42),
        ("llm.token_count.total", 42),
        ("max_tokens", "1024"),
        ("llm.token_usage", {"prompt": 3, "completion": 4}),
        ("tokenizer", "cl100k_base"),
    ],
)
def test_token_counts_are_not_mistaken_for_tokens(key, value):
    assert clean_attributes({key: value}) == {key: value}


def test_nested_maps_and_lists_are_redacted_too():
    attributes = {
        "http.request": {"headers": {"Authorization": "Bearer x", "accept": "*/*"}},
        "calls": [{"api_key": "k", "model": "m"}],
    }

    assert clean_attributes(attributes) == {
        "http.request": {"headers": {"Authorization": REDACTED, "accept": "*/*"}},
        "calls": [{"api_key": REDACTED, "model": "m"}],
    }


def test_long_values_are_truncated_with_a_marker_and_bodies_get_more_room(settings):
    settings.OTLP_ATTRIBUTE_MAX_CHARS = 10
    settings.OTLP_BODY_MAX_CHARS = 20

    cleaned = clean_attributes(
        {
            "url": "u" * 15,
            "http.response.body": "b" * 25,
            "gen_ai.prompt": {"text": "p" * 25},
            "short": "ok",
        }
    )

    assert cleaned["url"] == "u" * 10 + "… [truncated 5 chars]"
    assert cleaned["http.response.body"] == "b" * 20 + "… [truncated 5 chars]"
    assert cleaned["gen_ai.prompt"] == {"text": "p" * 20 + "… [truncated 5 chars]"}
    assert cleaned["short"] == "ok"


def test_the_input_is_left_unchanged():
    attributes = {"password": "x", "nested": {"token": "y"}}

    clean_attributes(attributes)

    assert attributes == {"password": "x", "nested": {"token": "y"}}


def test_values_no_database_can_store_are_made_safe():
    cleaned = clean_attributes({"nul": "a\x00b", "ratio": float("nan"), "big": float("inf")})

    assert cleaned == {"nul": "a\ufffdb", "ratio": "nan", "big": "inf"}
