"""Numbers too large for a database column are a 422, never a 500."""

from __future__ import annotations

from http import HTTPStatus

import pytest

pytestmark = pytest.mark.django_db


def test_a_token_count_beyond_the_column_is_refused_with_a_message(api_client):
    response = api_client.post(
        "/api/prompts/batch",
        {
            "items": [
                {
                    "content": "hello",
                    "phase": "solutio",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "actual_tokens": 2**40,
                }
            ]
        },
        content_type="application/json",
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "actual_tokens" in response.json()["detail"]
