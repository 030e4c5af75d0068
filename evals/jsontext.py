"""A JSON document read from a file a value at a time, for files too big to load whole.

The caller walks the containers it cares about (`members` of an object, `elements` of an array)
and takes every other value whole with `value`, which the standard library's C scanner
decodes (`JSONDecoder.raw_decode`) from a text buffer refilled as the walk moves on. A
promptfoo export's results decode about three times as fast this way as through ijson's
event-driven builder (evals.importers), and memory holds one buffer and the value being
read.

Strict JSON: NaN and ±Infinity are refused, as is anything but whitespace after the
document. A syntax error is told from a value cut by the buffer's end by where it is: the
buffer is only grown (doubling, so a big value costs linear time) when the error is at
its end or is a string still open there.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

CHUNK = 1 << 20
# How near the buffer's end an error or a number's end must be to mean "read more".
_TAIL = 32
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonSyntaxError(ValueError):
    """The file is not valid JSON; the message says what and at which character."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JsonText:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.decoder = json.JSONDecoder(parse_constant=_refuse_constant)
        self.buffer = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the buffer's front so far
        self.eof = False

    def _more(self) -> bool:
        """Append the next chunk (at least what the buffer holds unread); False at EOF."""
        if self.eof:
            return False
        data = self.handle.read(max(CHUNK, len(self.buffer) - self.pos))
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise JsonSyntaxError(f"not UTF-8 text near character {self._at(0)}: {exc}") from None
        self.consumed += self.pos
        self.buffer = self.buffer[self.pos :] + text
        self.pos = 0
        self.eof = not data
        return True

    def _at(self, pos: int) -> int:
        return self.consumed + pos

    def _error(self, message: str, pos: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(
            f"{message} at character {self._at(self.pos if pos is None else pos)}"
        )

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end), not taken."""
        while True:
            self.pos = _WHITESPACE.match(self.buffer, self.pos).end()
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._more():
                return ""

    def take(self, allowed: str) -> str:
        """The next character that is not whitespace, which must be one of `allowed`."""
        char = self.peek()
        if not char or char not in allowed:
            found = repr(char) if char else "the end of the file"
            expected = " or ".join(repr(c) for c in allowed)
            raise self._error(f"expected {expected}, found {found}")
        self.pos += 1
        return char

    def value(self) -> Any:
        """The next value, decoded whole."""
        if not self.peek():
            raise self._error("expected a value, found the end of the file")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                cut = (
                    exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buffer) - _TAIL
                )
                if cut and self._more():
                    continue
                raise self._error(exc.msg, exc.pos) from None
            except ValueError as exc:  # NaN or Infinity
                raise self._error(str(exc)) from None
            if isinstance(value, int | float) and end >= len(self.buffer) - _TAIL and self._more():
                continue  # a number may go on in the next chunk
            self.pos = end
            return value

    def members(self) -> Iterator[str]:
        """Each key of the object whose "{" was just taken, with its ":" taken: the caller
        reads the value (`value`, `members`, `elements`) before asking for the next key."""
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise self._error("expected a key")
            key = self.value()
            self.take(":")
            yield key
            if self.take(",}") == "}":
                return

    def elements(self) -> Iterator[Any]:
        """Each item of the array whose "[" was just taken, decoded whole."""
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.take(",]") == "]":
                return

    def end(self) -> None:
        """Nothing but whitespace may follow the document."""
        if self.peek():
            raise self._error("unexpected data after the document")
