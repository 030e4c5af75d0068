"""A JSON document read a value at a time: the same values as json.loads, whatever the
chunk boundaries, and errors that say where without reading the rest of the file."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evals import jsontext
from evals.jsontext import JsonSyntaxError, JsonText

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


def walk(text: JsonText) -> Any:
    """The next value, going into every container member by member (as the importer does)."""
    first = text.peek()
    if first == "{":
        text.take("{")
        return {key: walk(text) for key in text.members()}
    if first == "[":
        text.take("[")
        return [item for item in text.elements()]  # noqa: C416 - each item read whole
    return text.value()


def reader(data: bytes, monkeypatch, chunk: int) -> JsonText:
    monkeypatch.setattr(jsontext, "CHUNK", chunk)
    return JsonText(io.BytesIO(data))


@settings(max_examples=200, deadline=None)
@given(
    document=st.dictionaries(st.text(), documents),
    chunk=st.integers(1, 64),
    indent=st.sampled_from([None, 1]),
)
def test_any_document_reads_back_as_json_loads_does_whatever_the_chunks(document, chunk, indent):
    data = json.dumps(document, indent=indent, ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as monkeypatch:
        text = reader(data, monkeypatch, chunk)
        assert walk(text) == json.loads(data)
        text.end()


def test_a_number_cut_by_a_chunk_reads_whole(monkeypatch):
    text = reader(b"[12345678901234567890, 1.5e300, true]", monkeypatch, 3)
    text.take("[")
    assert list(text.elements()) == [12345678901234567890, 1.5e300, True]


def test_a_character_split_across_chunks_reads_whole(monkeypatch):
    text = reader('["é✓😀", "ok"]'.encode(), monkeypatch, 1)
    text.take("[")
    assert list(text.elements()) == ["é✓😀", "ok"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1,}', "expected a key at character 8"),
        (b'{"a": 1 "b": 2}', "expected ',' or '}', found '\"' at character 8"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": [1, 2', "expected ',' or ']', found the end of the file at character 11"),
        (b'{"a": "open', "Unterminated string"),
        (b'{"a": 1} {"b": 2}', "unexpected data after the document at character 9"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ],
)
def test_what_is_not_json_is_named_with_its_character(monkeypatch, data, message):
    text = reader(data, monkeypatch, 4)
    with pytest.raises(JsonSyntaxError, match=message):
        walk(text)
        text.end()


def test_an_error_early_in_a_big_file_is_found_without_reading_the_rest(monkeypatch):
    bad = b'[{"ok": 1}, {"broken" 2}, ' + b'{"filler": "' + b"x" * 10_000_000 + b'"}]'
    handle = io.BytesIO(bad)
    monkeypatch.setattr(jsontext, "CHUNK", 1024)
    text = JsonText(handle)
    text.take("[")
    with pytest.raises(JsonSyntaxError, match="Expecting ':' delimiter at character 22"):
        list(text.elements())
    assert handle.tell() < 10_000  # never read to the end looking for more of a value
