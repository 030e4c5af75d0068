"""Reading promptfoo-shaped eval configs (the common subset) into plain, checked data.

Every `file://` reference is resolved while loading, so the normalised config stored on
the eval is self-contained: `--resume` rebuilds the same jobs from the database alone.
Unknown keys are reported as warnings; mistakes as errors naming the key path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evals.evaluator import assertions, providers, render

TOP_LEVEL_KEYS = {
    "description", "prompts", "providers", "tests", "defaultTest", "tags", "evaluateOptions",
}  # fmt: skip
# promptfoo keys this evaluator accepts but does not act on.
IGNORED_KEYS = {"$schema", "sharing", "outputPath", "env", "writeLatestResults"}
TEST_KEYS = {"vars", "assert", "description", "metadata", "options", "threshold"}
TEST_OPTION_KEYS = {"prefix", "suffix", "disableVarExpansion"}
PROVIDER_KEYS = {"id", "label", "config"}
PROMPT_KEYS = {"id", "label", "raw"}
EVALUATE_OPTION_KEYS = {"maxConcurrency", "repeat"}
DEFAULT_MAX_CONCURRENCY = 4
PROMPT_FILE_SEPARATOR = "\n---\n"


class ConfigError(Exception):
    """A config that cannot run; `errors` holds one 'key.path: what is wrong' per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class PromptSpec:
    raw: str
    label: str


@dataclass(frozen=True)
class ProviderSpec:
    id: str
    label: str
    config: dict[str, Any]


@dataclass
class EvalConfig:
    description: str
    prompts: list[PromptSpec]
    providers: list[ProviderSpec]
    tests: list[dict[str, Any]]
    default_test: dict[str, Any]
    tags: dict[str, str]
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    repeat: int = 1
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The normalised, self-contained config (what is stored on the eval)."""
        return {
            "description": self.description,
            "prompts": [{"raw": p.raw, "label": p.label} for p in self.prompts],
            "providers": [
                {"id": p.id, "label": p.label, "config": p.config} for p in self.providers
            ],
            "tests": self.tests,
            "defaultTest": self.default_test,
            "tags": self.tags,
            "evaluateOptions": {"maxConcurrency": self.max_concurrency, "repeat": self.repeat},
        }


def load_config(path: str | Path) -> EvalConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config ({exc.strerror or exc})."]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(
            [f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"]
        ) from None
    return parse_config(data, base_dir=path.resolve().parent)


def parse_config(data: Any, *, base_dir: Path) -> EvalConfig:
    """Check and normalise a config dict; raise ConfigError listing every problem found."""
    parser = _Parser(base_dir)
    config = parser.parse(data)
    if parser.errors:
        raise ConfigError(parser.errors)
    assert config is not None
    config.warnings = parser.warnings
    return config


class _Parser:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def unknown_keys(self, data: dict, known: set[str], path: str) -> None:
        for key in data:
            if key in IGNORED_KEYS and not path:
                self.warnings.append(f"{key}: not supported by this evaluator; ignored.")
            elif key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.warnings.append(f"{where}: unknown key; ignored.")

    def parse(self, data: Any) -> EvalConfig | None:
        if not isinstance(data, dict):
            self.error("(top)", "the config must be a mapping of keys to values.")
            return None
        self.unknown_keys(data, TOP_LEVEL_KEYS, "")
        description = data.get("description") or ""
        if not isinstance(description, str):
            self.error("description", "must be a string.")
            description = ""
        prompts = self.prompts(data.get("prompts"))
        provider_specs = self.providers(data.get("providers"))
        default_test = self.test(data.get("defaultTest") or {}, "defaultTest", default=True)
        tests = self.tests(data.get("tests"))
        tags = self.tags(data.get("tags"))
        max_concurrency, repeat = self.evaluate_options(data.get("evaluateOptions"))
        return EvalConfig(
            description=description,
            prompts=prompts,
            providers=provider_specs,
            tests=tests,
            default_test=default_test or {},
            tags=tags,
            max_concurrency=max_concurrency,
            repeat=repeat,
        )

    # --- prompts -----------------------------------------------------------------------

    def prompts(self, value: Any) -> list[PromptSpec]:
        if value is None:
            self.error("prompts", "required: a list of prompt strings, file:// paths or objects.")
            return []
        items = value if isinstance(value, list) else [value]
        specs: list[PromptSpec] = []
        for index, item in enumerate(items):
            path = f"prompts[{index}]"
            if isinstance(item, str):
                specs += self.prompt_source(item, None, path)
            elif isinstance(item, dict):
                self.unknown_keys(item, PROMPT_KEYS, path)
                label = item.get("label")
                if label is not None and not isinstance(label, str):
                    self.error(f"{path}.label", "must be a string.")
                    label = None
                if isinstance(item.get("raw"), str):
                    specs.append(PromptSpec(raw=item["raw"], label=label or item["raw"]))
                elif isinstance(item.get("id"), str):
                    specs += self.prompt_source(item["id"], label, path)
                else:
                    self.error(
                        path, "needs a string 'raw' (the template) or 'id' (a file:// path)."
                    )
            else:
                self.error(path, "must be a string or an object with raw/label.")
        if isinstance(value, list) and not value:
            self.error("prompts", "is empty; give at least one prompt.")
        for index, spec in enumerate(specs):
            problem = render.template_error(spec.raw)
            if problem:
                self.error(f"prompts[{index}]", f"template error: {problem}")
        return specs

    def prompt_source(self, text: str, label: str | None, path: str) -> list[PromptSpec]:
        if not text.startswith("file://"):
            return [PromptSpec(raw=text, label=label or text)]
        content = self.read_file(text, path)
        if content is None:
            return []
        parts = [content]
        if Path(text).suffix in {".txt", ".md", ""}:
            parts = [part.strip("\n") for part in content.split(PROMPT_FILE_SEPARATOR)]
        if len(parts) == 1:
            return [PromptSpec(raw=parts[0], label=label or text)]
        return [
            PromptSpec(raw=part, label=f"{label or text}: {part[:40]}")
            for part in parts
            if part.strip()
        ]

    def resolve(self, reference: str) -> Path:
        target = Path(reference.removeprefix("file://"))
        return target if target.is_absolute() else (self.base_dir / target)

    def read_file(self, reference: str, path: str) -> str | None:
        target = self.resolve(reference)
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            self.error(path, f"cannot read {target} ({exc.strerror or exc}).")
            return None

    # --- providers ---------------------------------------------------------------------

    def providers(self, value: Any) -> list[ProviderSpec]:
        if value is None:
            self.error("providers", "required: a list of provider ids such as echo.")
            return []
        items = value if isinstance(value, list) else [value]
        specs: list[ProviderSpec] = []
        for index, item in enumerate(items):
            path = f"providers[{index}]"
            if isinstance(item, str):
                spec = ProviderSpec(id=item, label=item, config={})
            elif isinstance(item, dict) and len(item) == 1 and not set(item) & PROVIDER_KEYS:
                # promptfoo's `- openai:gpt-4o-mini: {config: …}` short form.
                ((provider_id, options),) = item.items()
                options = options if isinstance(options, dict) else {}
                spec = self.provider_object({"id": provider_id, **options}, path)
            elif isinstance(item, dict):
                spec = self.provider_object(item, path)
            else:
                self.error(path, "must be a provider id or an object with id/label/config.")
                continue
            if spec is None:
                continue
            problem = providers.check_provider_id(spec.id)
            if problem:
                self.error(f"{path}.id" if isinstance(item, dict) else path, problem)
            specs.append(spec)
        if isinstance(value, list) and not value:
            self.error("providers", "is empty; give at least one provider.")
        return specs

    def provider_object(self, item: dict, path: str) -> ProviderSpec | None:
        self.unknown_keys(item, PROVIDER_KEYS, path)
        provider_id, label, config = item.get("id"), item.get("label"), item.get("config") or {}
        if not isinstance(provider_id, str) or not provider_id:
            self.error(f"{path}.id", "required: a provider id string.")
            return None
        if label is not None and not isinstance(label, str):
            self.error(f"{path}.label", "must be a string.")
            label = None
        if not isinstance(config, dict):
            self.error(f"{path}.config", "must be a mapping.")
            config = {}
        return ProviderSpec(id=provider_id, label=label or provider_id, config=config)

    # --- tests -------------------------------------------------------------------------

    def tests(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if isinstance(value, str) and value.startswith("file://"):
            content = self.read_file(value, "tests")
            if content is None:
                return []
            try:
                value = yaml.safe_load(content)
            except yaml.YAMLError as exc:
                self.error("tests", f"{value} is not valid YAML/JSON: {exc}")
                return []
        if not isinstance(value, list):
            self.error("tests", "must be a list of test cases (or a file:// path to one).")
            return []
        tests = []
        for index, item in enumerate(value):
            test = self.test(item, f"tests[{index}]")
            if test is not None:
                tests.append(test)
        return tests

    def test(self, item: Any, path: str, *, default: bool = False) -> dict[str, Any] | None:
        if not isinstance(item, dict):
            self.error(path, "must be a mapping with vars/assert/description/….")
            return None
        self.unknown_keys(item, TEST_KEYS, path)
        test: dict[str, Any] = {}
        if "description" in item:
            if isinstance(item["description"], str):
                test["description"] = item["description"]
            else:
                self.error(f"{path}.description", "must be a string.")
        test["vars"] = self.vars(item.get("vars"), f"{path}.vars")
        test["assert"] = self.asserts(item.get("assert"), f"{path}.assert")
        for key in ("metadata", "options"):
            value = item.get(key)
            if value is None:
                continue
            if not isinstance(value, dict):
                self.error(f"{path}.{key}", "must be a mapping.")
                continue
            if key == "options":
                self.unknown_keys(value, TEST_OPTION_KEYS | {"threshold"}, f"{path}.options")
            test[key] = value
        threshold = item.get("threshold", (item.get("options") or {}).get("threshold"))
        if threshold is not None:
            if _is_number(threshold):
                test["threshold"] = threshold
            else:
                self.error(f"{path}.threshold", "must be a number.")
        return test

    def vars(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, "must be a mapping of variable names to values.")
            return {}
        resolved = {}
        for name, var in value.items():
            if isinstance(var, str) and var.startswith("file://"):
                content = self.read_file(var, f"{path}.{name}")
                var = content if content is not None else var
            resolved[str(name)] = var
        return resolved

    def asserts(self, value: Any, path: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(path, "must be a list of assertions.")
            return []
        checked = []
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(item, dict):
                self.error(where, "must be a mapping with at least a 'type'.")
                continue
            item = dict(item)
            for key in sorted(set(item) - assertions.ASSERTION_KEYS):
                self.warnings.append(f"{where}.{key}: unknown key; ignored.")
            value_ = item.get("value")
            if (
                isinstance(value_, str)
                and value_.startswith("file://")
                and item.get("type") in ("python", "not-python")
            ):
                item["value"] = self.python_reference(value_, f"{where}.value")
            for key, problem in assertions.check_assertion(item):
                self.error(f"{where}.{key}", problem)
            checked.append(item)
        return checked

    def python_reference(self, reference: str, path: str) -> str:
        """`file://path.py[:func]` → the same with an absolute path, checked to exist."""
        target, _, function = reference.removeprefix("file://").partition(":")
        absolute = self.resolve(target)
        if not absolute.is_file():
            self.error(path, f"{absolute} does not exist.")
        return f"file://{absolute}" + (f":{function}" if function else "")

    # --- the rest ----------------------------------------------------------------------

    def tags(self, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error("tags", "must be a mapping of tag names to values.")
            return {}
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    def evaluate_options(self, value: Any) -> tuple[int, int]:
        if value is None:
            return DEFAULT_MAX_CONCURRENCY, 1
        if not isinstance(value, dict):
            self.error("evaluateOptions", "must be a mapping.")
            return DEFAULT_MAX_CONCURRENCY, 1
        self.unknown_keys(value, EVALUATE_OPTION_KEYS, "evaluateOptions")
        numbers = []
        for key, default in (("maxConcurrency", DEFAULT_MAX_CONCURRENCY), ("repeat", 1)):
            number = value.get(key, default)
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                self.error(f"evaluateOptions.{key}", "must be a whole number of at least 1.")
                number = default
            numbers.append(number)
        return numbers[0], numbers[1]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
