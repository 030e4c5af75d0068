"""The one filter builder: table pages, filtered counts and filtered stats all use it.

Field names and values are always bound parameters (JSON paths are passed as parameters,
never spliced into SQL). Unlike promptfoo, `logic: "or"` really means OR: filters combine
with the usual precedence (AND binds tighter than OR), so `a AND b OR c` is `(a AND b) OR c`.

Metric filters compare numbers: they take equals, not_equals, gt, gte, lt, lte, exists and
not_exists; contains/not_contains on a metric is refused. A key is present when it holds a
value that is not JSON null and not an empty or blank (whitespace-only) string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Count, F, FloatField, Q, Subquery, TextField
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IsNull,
    LessThan,
    LessThanOrEqual,
    StartsWith,
)

from alchemy_site.errors import Invalid
from evals.models import EvalResult, FailureReason
from evals.prepare import KEY_COLUMNS
from evals.search import eval_q, search_q

MODES = ("all", "failures", "passes", "errors", "highlights", "user-rated", "different")
FILTER_TYPES = ("metadata", "metric", "plugin", "strategy", "severity")
OPERATORS = (
    "equals", "not_equals", "contains", "not_contains", "exists", "not_exists",
    "gt", "gte", "lt", "lte",
)  # fmt: skip
NUMERIC = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}
RED_TEAM_KEYS = {"plugin": "pluginId", "strategy": "strategyId", "severity": "severity"}
METRIC_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte", "exists", "not_exists")
# ASCII whitespace, what str.strip() removes from ASCII text; SQL's trim() takes spaces only.
BLANK = " \t\n\r\f\v"
TABLE = EvalResult._meta.db_table
MAX_FILTERS = 50


@dataclass(frozen=True)
class FilterSpec:
    type: str
    field: str
    operator: str
    value: Any
    logic: str


def is_unfiltered(*, mode: str = "all", search: str = "", filters: Any = None) -> bool:
    return (mode or "all") == "all" and not (search or "").strip() and not parse_filters(filters)


def parse_filters(raw: Any) -> list[FilterSpec]:
    """Accept a JSON string or a list of dicts; raise Invalid naming the bad filter."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        raw = _loads(raw)
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise Invalid("filters must be a JSON list of filter objects.", field="filters")
    if len(raw) > MAX_FILTERS:
        raise Invalid(f"At most {MAX_FILTERS} filters are allowed.", field="filters")
    specs = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            try:
                item = _loads(item)
            except Invalid:
                item = None
        if not isinstance(item, dict):
            raise Invalid(f"filters[{index}] must be an object.", index=index, field="filters")
        kind = str(item.get("type", "")).lower()
        operator = str(item.get("operator", "equals")).lower()
        logic = str(item.get("logic") or "and").lower()
        field = item.get("field")
        if kind not in FILTER_TYPES:
            raise Invalid(
                f"filters[{index}].type must be one of {', '.join(FILTER_TYPES)}.",
                index=index,
                field="type",
            )
        if operator not in OPERATORS:
            raise Invalid(
                f"filters[{index}].operator must be one of {', '.join(OPERATORS)}.",
                index=index,
                field="operator",
            )
        if logic not in ("and", "or"):
            raise Invalid(f"filters[{index}].logic must be and or or.", index=index, field="logic")
        if kind in ("metadata", "metric") and (not isinstance(field, str) or not field):
            raise Invalid(
                f"filters[{index}].field must name a {kind} key.", index=index, field="field"
            )
        if kind == "metric" and operator not in METRIC_OPERATORS:
            raise Invalid(
                f"filters[{index}]: metric filters compare numbers; they take "
                f"{', '.join(METRIC_OPERATORS)}, not {operator}.",
                index=index,
                field="filters",
            )
        value = item.get("value")
        if operator in NUMERIC or (kind == "metric" and operator in ("equals", "not_equals")):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise Invalid(
                    f"filters[{index}].value must be a number for {operator}.",
                    index=index,
                    field="value",
                ) from None
        elif operator not in ("exists", "not_exists"):
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str | int | float):
                raise Invalid(
                    f"filters[{index}].value must be a string or number.",
                    index=index,
                    field="value",
                )
            value = str(value)
        specs.append(
            FilterSpec(kind, field if isinstance(field, str) else "", operator, value, logic)
        )
    return specs


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise Invalid("filters are nested too deeply.", field="filters") from None
    except ValueError:
        raise Invalid("filters must be a JSON list of filter objects.", field="filters") from None


def json_path(*keys: str) -> str:
    return "$" + "".join(f".{json.dumps(key)}" for key in keys)


def sqlite_key(column: str, *keys: str) -> tuple[str, str, str]:
    """SQLite SQL for the JSON type and the SQL value at `keys`, and the one parameter each takes.

    SQLite's JSON paths have no escapes, so a path can't name a key holding `"`; such a
    top-level key is looked up with json_each, whose `key` column is the decoded key.
    """
    col = f'"{TABLE}"."{column}"'
    if len(keys) == 1 and '"' in keys[0]:
        each = f"(SELECT j.{{}} FROM json_each({col}) AS j WHERE j.key = %s)"
        return each.format("type"), each.format("value"), keys[0]
    return f"json_type({col}, %s)", f"json_extract({col}, %s)", json_path(*keys)


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal for RawSQL: quotes doubled, `%` kept from formatting."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def json_number(column: str, *keys: str) -> RawSQL:
    """A JSON value as a float when it is a JSON number, else NULL (never a cast error)."""
    col = f'"{TABLE}"."{column}"'
    if connection.vendor == "sqlite":
        kind, value, param = sqlite_key(column, *keys)
        # The path inlined as a constant, not bound: SQLite's JSON functions then do ~25%
        # less work per row, which filtered stats over 250k rows notice.
        sql = f"CASE WHEN {kind} IN ('integer', 'real') THEN {value} END"
        return RawSQL(sql.replace("%s", sql_literal(param)), [], output_field=FloatField())
    return RawSQL(
        f"CASE WHEN jsonb_typeof({col} #> %s) = 'number' THEN ({col} #>> %s)::double precision END",
        [list(keys), list(keys)],
        output_field=FloatField(),
    )


def json_present(column: str, key: str) -> Q:
    """The key holds a value: not missing, not JSON null, not an empty/blank string.

    Blank means only whitespace (BLANK). `[]`, `{}`, `0` and `false` are values and count
    as present.
    """
    col = f'"{TABLE}"."{column}"'
    if connection.vendor == "sqlite":
        kind, value, param = sqlite_key(column, key)
        sql = (
            f"coalesce({kind} NOT IN ('null', 'text') OR "
            f"({kind} = 'text' AND trim({value}, %s) != ''), 0)"
        )
        params = [param, param, param, BLANK]
    else:
        sql = (
            f"coalesce(jsonb_typeof({col} -> %s) NOT IN ('null', 'string') OR "
            f"(jsonb_typeof({col} -> %s) = 'string' AND btrim({col} ->> %s, %s) != ''), false)"
        )
        params = [key, key, key, BLANK]
    return Q(RawSQL(sql, params, output_field=BooleanField()))


def json_text(column: str, key: str):
    """A top-level key's value as text; JSON true/false/null read as "true"/"false"/"null"."""
    if connection.vendor != "sqlite":
        return KeyTextTransform(key, column)
    # Django's KeyTextTransform, spelled out so that keys holding `"` work too (sqlite_key).
    kind, value, param = sqlite_key(column, key)
    return RawSQL(
        f"CASE WHEN {kind} IN ('null', 'true', 'false') THEN {kind} ELSE {value} END",
        [param, param, param],
        output_field=TextField(),
    )


def _condition(spec: FilterSpec) -> Q:
    column = "named_scores" if spec.type == "metric" else "metadata"
    key = RED_TEAM_KEYS.get(spec.type, spec.field)
    present = json_present(column, key)
    if spec.operator == "exists":
        return present
    if spec.operator == "not_exists":
        return ~present
    if spec.operator in NUMERIC or spec.type == "metric":
        number = json_number(column, key)
        if spec.operator in NUMERIC:
            return Q(NUMERIC[spec.operator](number, spec.value))
        match = Q(Exact(number, spec.value))
        return match if spec.operator == "equals" else ~match | Q(IsNull(number, True))
    value = spec.value
    stored = KEY_COLUMNS.get(key) if column == "metadata" else None
    if stored:
        # Its own column, lower-cased already (evals.prepare.key_text): an index serves it.
        text = lowered = F(stored)
        contains = Q(Contains(text, value.lower()))
    else:
        text = json_text(column, key)
        lowered = Lower(text)
        contains = Q(IContains(text, value))
    if spec.operator in ("equals", "not_equals"):
        if spec.type == "plugin":
            # A plugin family ("harmful") also names its members ("harmful:hate").
            match = _plugin_family(lowered, value.lower())
        else:
            match = Q(Exact(lowered, value.lower()))
    else:
        match = contains
    if spec.operator.startswith("not_"):
        return ~match | Q(IsNull(text, True))
    return match


def _plugin_family(expression: Any, family: str) -> Q:
    """`expression` is `family` or starts with `family:`, in a form an index can serve.

    SQLite compares text bytewise (BINARY), so those values are exactly `family` and the
    range ["family:", "family;"), all inside ["family", "family;"): one index range with
    the exact test on top (an OR of the two, or LIKE, makes SQLite scan the eval instead).
    PostgreSQL's collations don't order bytewise, so it keeps equality OR LIKE there.
    """
    exact = Q(Exact(expression, family))
    if connection.vendor != "sqlite":
        return exact | Q(StartsWith(expression, family + ":"))
    return (
        Q(GreaterThanOrEqual(expression, family))
        & Q(LessThan(expression, family + ";"))
        & (exact | Q(GreaterThanOrEqual(expression, family + ":")))
    )


def combine(specs: list[FilterSpec]) -> Q:
    groups: list[Q] = []
    for position, spec in enumerate(specs):
        condition = _condition(spec)
        if position == 0 or spec.logic == "or":
            groups.append(condition)
        else:
            groups[-1] &= condition
    result = Q()
    for group in groups:
        result = group if not result else result | group
    return result


def _user_rated() -> Q:
    col = f'"{TABLE}"."grading_result"'
    if connection.vendor == "sqlite":
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({col}, '$.componentResults') AS c "
            "WHERE json_extract(c.value, '$.assertion.type') = 'human')"
        )
        return Q(RawSQL(sql, [], output_field=BooleanField()))
    return Q(
        RawSQL(
            f"coalesce({col} -> 'componentResults' @> %s::jsonb, false)",
            [json.dumps([{"assertion": {"type": "human"}}])],
            output_field=BooleanField(),
        )
    )


def _different(eval_id: str) -> Q:
    differing = (
        EvalResult.objects.filter(eval_id=eval_id)
        .order_by()
        .values("test_idx")
        .annotate(outputs=Count(KeyTextTransform("output", "response"), distinct=True))
        .filter(outputs__gt=1)
        .values("test_idx")
    )
    return Q(test_idx__in=Subquery(differing))


def mode_q(eval_id: str, mode: str) -> Q:
    mode = (mode or "all").lower()
    if mode == "all":
        return Q()
    # `success IN (…)`, not `success = …`: Django writes the latter as `NOT "success"` on
    # SQLite, which no index on (eval, success, test_idx) can serve.
    if mode == "failures":
        return Q(success__in=[False]) & ~Q(failure_reason=FailureReason.ERROR)
    if mode == "passes":
        return Q(success__in=[True])
    if mode == "errors":
        return Q(failure_reason=FailureReason.ERROR)
    if mode == "highlights":
        return Q(StartsWith(KeyTextTransform("comment", "grading_result"), "!highlight"))
    if mode == "user-rated":
        return _user_rated()
    if mode == "different":
        return _different(eval_id)
    raise Invalid(f"mode must be one of {', '.join(MODES)}, got {mode!r}.", field="mode")


def build_filter(*, eval_id: str, mode: str = "all", search: str = "", filters: Any = None) -> Q:
    """The condition on EvalResult rows for one eval's filtered view."""
    if search and search.strip():
        q = eval_q(eval_id, search) & mode_q(eval_id, mode) & search_q(search)
    else:
        q = Q(eval_id=eval_id) & mode_q(eval_id, mode)
    specs = parse_filters(filters)
    if specs:
        q &= combine(specs)
    return q
