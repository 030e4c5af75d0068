"""The API's JSON renderer writes what ninja's own would, faster."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from ninja.responses import NinjaJSONEncoder

from alchemy_site.api import FastJSONRenderer


def render(data):
    return FastJSONRenderer().render(None, data, response_status=200)


def test_it_writes_the_same_values_as_ninjas_json_renderer():
    data = {
        "when": datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "price": Decimal("1.10"),
        "id": UUID("12345678-1234-5678-1234-567812345678"),
        "text": "déjà vu",
        "nested": [{"a": 1, "b": None, "c": 0.1}],
        3: "an int key",
    }
    expected = json.loads(json.dumps(data, cls=NinjaJSONEncoder))
    assert json.loads(render(data)) == expected
    assert expected["when"] == "2025-01-02T03:04:05.678Z"  # Django's format kept


def test_values_orjson_cannot_write_still_render():
    assert json.loads(render({"big": 10**30, "nan": float("nan")})) == {"big": 10**30, "nan": None}
