"""A JSON Schema checker covering the keywords eval configs use (no `$ref`, no formats).

`is-json` and `contains-json` with a `value` validate the output against it; the first
violation is reported with its JSON path, which is all an assertion's reason needs.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            or (isinstance(value, float) and value.is_integer())
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _TYPES.get(name)
    return expected is not None and isinstance(value, expected)


def first_error(value: Any, schema: Any, path: str = "$") -> str | None:
    """The first way `value` breaks `schema`, as 'path: problem', or None when it conforms."""
    if schema is True or schema == {}:
        return None
    if schema is False:
        return f"{path}: no value is allowed here"
    if not isinstance(schema, dict):
        return f"{path}: the schema is not an object"
    for check in (_check_type, _check_enum, _check_number, _check_string, _check_array,
                  _check_object, _check_combinators):  # fmt: skip
        problem = check(value, schema, path)
        if problem:
            return problem
    return None


def _check_type(value: Any, schema: dict, path: str) -> str | None:
    wanted = schema.get("type")
    if wanted is None:
        return None
    names = wanted if isinstance(wanted, list) else [wanted]
    if any(_is_type(value, name) for name in names):
        return None
    return f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"


def _check_enum(value: Any, schema: dict, path: str) -> str | None:
    if "const" in schema and value != schema["const"]:
        return f"{path}: must equal {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: must be one of {schema['enum']!r}"
    return None


def _check_number(value: Any, schema: dict, path: str) -> str | None:
    if not _is_type(value, "number"):
        return None
    if "minimum" in schema and value < schema["minimum"]:
        return f"{path}: {value} is less than {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{path}: {value} is more than {schema['maximum']}"
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return f"{path}: {value} is not more than {schema['exclusiveMinimum']}"
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        return f"{path}: {value} is not less than {schema['exclusiveMaximum']}"
    return None


def _check_string(value: Any, schema: dict, path: str) -> str | None:
    if not isinstance(value, str):
        return None
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"{path}: shorter than {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"{path}: longer than {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{path}: does not match /{schema['pattern']}/"
    return None


def _check_array(value: Any, schema: dict, path: str) -> str | None:
    if not isinstance(value, list):
        return None
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"{path}: fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{path}: more than {schema['maxItems']} items"
    if schema.get("uniqueItems") and len({repr(v) for v in value}) != len(value):
        return f"{path}: items are not unique"
    items = schema.get("items")
    if isinstance(items, dict | bool):
        for index, item in enumerate(value):
            problem = first_error(item, items, f"{path}[{index}]")
            if problem:
                return problem
    return None


def _check_object(value: Any, schema: dict, path: str) -> str | None:
    if not isinstance(value, dict):
        return None
    for name in schema.get("required", []):
        if name not in value:
            return f"{path}: missing required property {name!r}"
    properties = schema.get("properties", {})
    for name, item in value.items():
        if name in properties:
            problem = first_error(item, properties[name], f"{path}.{name}")
        elif "additionalProperties" in schema:
            problem = first_error(item, schema["additionalProperties"], f"{path}.{name}")
        else:
            problem = None
        if problem:
            return problem
    return None


def _check_combinators(value: Any, schema: dict, path: str) -> str | None:
    for sub in schema.get("allOf", []):
        problem = first_error(value, sub, path)
        if problem:
            return problem
    if "anyOf" in schema and all(first_error(value, s, path) for s in schema["anyOf"]):
        return f"{path}: matches none of anyOf"
    if "oneOf" in schema:
        matches = sum(first_error(value, s, path) is None for s in schema["oneOf"])
        if matches != 1:
            return f"{path}: matches {matches} of oneOf, not exactly one"
    if "not" in schema and first_error(value, schema["not"], path) is None:
        return f"{path}: matches a schema under 'not'"
    return None
