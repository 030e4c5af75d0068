"""The expression of the red-team key indexes that migration 0005 built and 0012 dropped.

The keys are stored columns since migration 0012 (evals.prepare.KEY_COLUMNS); this
expression stays importable for the migrations that name it (and 0012's reversal).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db.models.fields.json import KeyTextTransform


class MetadataKeyText(KeyTextTransform):
    """A top-level JSON key's value as text, spelled the same in index DDL and queries.

    SQLite uses an expression index only for a textually identical expression. Django's
    KeyTextTransform binds the JSON path as a parameter (inlined in DDL, bound in queries)
    and lists the JSON types from a frozenset (order varies with the hash seed), so an
    index on it matches no query. Here the path is a literal and the order fixed; the key
    is a constant from the code, never user input. PostgreSQL: plain `->>`.
    """

    def __init__(self, key_name: str, *args: Any, **kwargs: Any) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", key_name):
            raise ValueError(f"MetadataKeyText takes a plain key name, not {key_name!r}.")
        super().__init__(key_name, *args, **kwargs)

    def as_sqlite(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        lhs, params = compiler.compile(self.lhs)
        path = "'$." + json.dumps(self.key_name) + "'"
        sql = (
            f"(CASE WHEN JSON_TYPE({lhs}, {path}) IN ('null', 'true', 'false') "
            f"THEN JSON_TYPE({lhs}, {path}) ELSE JSON_EXTRACT({lhs}, {path}) END)"
        )
        return sql, tuple(params) * 3
