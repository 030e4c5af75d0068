"""Prompt templates: `{{var}}` rendered with Jinja2, which reads like promptfoo's Nunjucks.

Sandboxed, because configs may come from someone else; a missing variable renders as an
empty string, as in Nunjucks.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
# Nunjucks filters that prompt authors reach for and Jinja2 spells differently.
_ENV.filters["dump"] = _ENV.filters["tojson"]


class RenderError(Exception):
    pass


@lru_cache(maxsize=1024)
def _compile(template: str):
    return _ENV.from_string(template)


def template_error(template: str) -> str | None:
    """Why `template` cannot compile, or None when it can."""
    try:
        _compile(template)
    except TemplateSyntaxError as exc:
        return f"{exc.message} (line {exc.lineno})"
    return None


def render(template: str, variables: dict[str, Any]) -> str:
    if "{" not in template:
        return template
    try:
        return _compile(template).render(**variables)
    except Exception as exc:  # noqa: BLE001 - any template failure becomes an error result
        raise RenderError(f"Could not render the template: {exc}") from exc


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Assertion values may be templates too (`value: '{{expected}}'`)."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


def expand_vars(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's var expansion: a list-valued var runs the test once per element."""
    names = [name for name, value in variables.items() if isinstance(value, list)]
    if not names:
        return [variables]
    combos = itertools.product(*(variables[name] for name in names))
    return [{**variables, **dict(zip(names, combo, strict=True))} for combo in combos]
