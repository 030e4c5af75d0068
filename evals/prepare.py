"""A batch of promptfoo results turned into rows: the half of the write path that reads no
database.

`prepare_results` validates each result, normalizes it to the results table's columns,
encodes its JSON once, takes out the numbers stats add up (evals.facts) and adds the
batch's contribution to each prompt's aggregates. evals.services stores what it prepares
(`add_results` is `store_prepared(prepare_results(...))`). Nothing here touches the
database or Django's connections, so an import prepares its batches in a second process
while the first one writes (evals.importers).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain, count, repeat
from operator import add, itemgetter
from typing import Any

import orjson
from django.conf import settings

from alchemy_site import fastjson
from alchemy_site.errors import Invalid, TooLarge
from evals.facts import FACT_COLUMNS, result_facts
from evals.models import FailureReason

# The red-team metadata keys filters read most, each stored in a column of its own
# (metadata key → column), as `key_text` spells them.
KEY_COLUMNS = {
    "pluginId": "meta_plugin_id",
    "strategyId": "meta_strategy_id",
    "severity": "meta_severity",
}
# A prepared row's values, in this order (evals.services.RESULT_COLUMNS puts the eval,
# prompt text and timestamps in front when it inserts them).
ROW_COLUMNS = (
    "prompt_idx", "test_idx", "test_case", "prompt", "provider", "response", "error",
    "failure_reason", "success", "score", "latency_ms", "cost", "grading_result",
    "named_scores", "metadata", *KEY_COLUMNS.values(), "search_text", *FACT_COLUMNS,
)  # fmt: skip
PROMPT_IDX, TEST_IDX = 0, 1
FAILURE_REASON, SUCCESS, SCORE, LATENCY_MS, COST = 7, 8, 9, 10, 11
NAMED_SCORES = 13
FACTS = ROW_COLUMNS.index(FACT_COLUMNS[0])
# The JSON columns, and those of them that can hold media (blobs.services.SCANNED_FIELDS).
JSON_POSITIONS = tuple(
    ROW_COLUMNS.index(name)
    for name in (
        "test_case", "prompt", "provider", "response", "grading_result", "named_scores",
        "metadata",
    )
)  # fmt: skip
MEDIA_POSITIONS = tuple(
    ROW_COLUMNS.index(name) for name in ("response", "grading_result", "metadata")
)
_MEDIA_TEXTS = itemgetter(*MEDIA_POSITIONS)

# The results table's integer columns (indices, latency) are 32-bit on PostgreSQL.
INT_COLUMN_MAX = 2**31 - 1
# Integers beyond this are no float (float() would raise OverflowError).
_FLOAT_INT_MAX = int(sys.float_info.max)
_FLOAT_MAX = sys.float_info.max


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- aggregates --------------------------------------------------------------------------


@dataclass
class Contribution:
    """What results add to their prompt's aggregates (subtracted again on re-rating)."""

    result_count: int = 0
    pass_count: int = 0
    fail_count: int = 0
    error_count: int = 0
    score_sum: float = 0.0
    assert_pass_count: int = 0
    assert_fail_count: int = 0
    token_prompt: int = 0
    token_completion: int = 0
    token_total: int = 0
    token_cached: int = 0
    token_num_requests: int = 0
    assert_token_prompt: int = 0
    assert_token_completion: int = 0
    assert_token_total: int = 0
    assert_token_cached: int = 0
    latency_sum_ms: int = 0
    cost_sum: float = 0.0
    named_score_sums: dict[str, float] = field(default_factory=dict)
    named_score_weights: dict[str, float] = field(default_factory=dict)
    # The same, for the results of each outcome (OUTCOMES): the stats of the passes,
    # failures and errors views without reading a result.
    by_outcome: dict[str, Contribution] = field(default_factory=dict)

    COUNTERS = (
        "result_count", "pass_count", "fail_count", "error_count", "score_sum",
        "assert_pass_count", "assert_fail_count", "token_prompt", "token_completion",
        "token_total", "token_cached", "token_num_requests", "assert_token_prompt",
        "assert_token_completion", "assert_token_total", "assert_token_cached",
        "latency_sum_ms", "cost_sum",
    )  # fmt: skip

    def add(self, other: Contribution, sign: int = 1) -> None:
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        for key, value in other.named_score_sums.items():
            self.named_score_sums[key] = self.named_score_sums.get(key, 0.0) + sign * value
        for key, value in other.named_score_weights.items():
            self.named_score_weights[key] = self.named_score_weights.get(key, 0.0) + sign * value
        for outcome, part in other.by_outcome.items():
            self.outcome(outcome).add(part, sign)

    def outcome(self, outcome: str) -> Contribution:
        part = self.by_outcome.get(outcome)
        if part is None:
            part = self.by_outcome[outcome] = Contribution()
        return part

    def totalled(self) -> Contribution:
        """Add the outcomes into the totals (results are accumulated into their outcome)."""
        for part in self.by_outcome.values():
            self.add(part)  # an outcome's part has no outcomes of its own
        return self

    def merged_outcomes(self, stored: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The stored per-outcome aggregates (EvalPromptStats.by_outcome) with these added."""
        merged = dict(stored or {})
        for outcome, part in self.by_outcome.items():
            row = dict(merged.get(outcome) or {})
            for name in self.COUNTERS:
                row[name] = row.get(name, 0) + getattr(part, name)
            row["named_score_sums"], row["named_score_weights"] = part.merged_named_scores(
                row.get("named_score_sums") or {}, row.get("named_score_weights") or {}
            )
            merged[outcome] = row
        return merged

    def merged_named_scores(
        self, sums: dict[str, float], weights: dict[str, float]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Stored named-score sums and weights with this contribution added.

        A metric whose weight drops to zero (its last result re-rated away) disappears.
        """
        sums, weights = dict(sums or {}), dict(weights or {})
        for key, value in self.named_score_sums.items():
            sums[key] = sums.get(key, 0.0) + value
        for key, value in self.named_score_weights.items():
            weights[key] = weights.get(key, 0.0) + value
        for key in [k for k, w in weights.items() if w <= 0]:
            weights.pop(key)
            sums.pop(key, None)
        return sums, weights


# A result's outcome: the passes, failures and errors views show exactly these.
OUTCOMES = ("pass", "fail", "error")


def outcome_of(success: bool, failure_reason: int) -> str:
    if success:
        return "pass"
    return "error" if failure_reason == FailureReason.ERROR else "fail"


def contribution_of(
    *, success: bool, failure_reason: int, score: float, latency_ms: int, cost: float,
    facts: tuple[int, ...], named_scores: Any,
) -> Contribution:  # fmt: skip
    """The aggregate contribution of one stored result, computed from its columns.

    `facts` are its FACT_COLUMNS values (evals.facts.result_facts), so nothing here walks
    the result's JSON again.
    """
    c, outcome = Contribution(), outcome_of(success, failure_reason)
    columns = list(zip((score, latency_ms, cost, *facts)))  # one value a column
    named = named_scores if isinstance(named_scores, dict) else {}
    _add_results(c.outcome(outcome), outcome, columns, [named])
    return c.totalled()


def contribution_of_prepared(row: tuple) -> Contribution:
    """contribution_of for one prepared row (ROW_COLUMNS)."""
    return contribution_of(
        success=row[SUCCESS], failure_reason=row[FAILURE_REASON], score=row[SCORE],
        latency_ms=row[LATENCY_MS], cost=row[COST], facts=row[FACTS:],
        named_scores=orjson.loads(row[NAMED_SCORES]),
    )  # fmt: skip


# What a prepared row adds up, in _add_results' order: score, latency, cost, the facts.
_NUMBERS = itemgetter(SCORE, LATENCY_MS, COST, *range(FACTS, len(ROW_COLUMNS)))


def _add_results(
    part: Contribution, outcome: str, columns: Sequence[tuple], named_scores: list[dict]
) -> None:
    """Add results of one `outcome` to its part of a prompt's contribution, in order.

    `columns` are the results' scores, latencies, costs and each fact (`_NUMBERS` of their
    rows' columns), `named_scores` their named scores. Each is summed a whole column at a
    time: floats in the order added one by one (so the same sums), integers with sum().
    """
    score, latency, cost, *facts = columns
    count = len(score)
    part.result_count += count
    if outcome == "pass":
        part.pass_count += count
    elif outcome == "error":
        part.error_count += count
    else:
        part.fail_count += count
    part.score_sum = reduce(add, score, part.score_sum)
    part.latency_sum_ms += sum(latency)
    part.cost_sum = reduce(add, cost, part.cost_sum)
    _add_facts(part, [sum(column) for column in facts])
    _add_named_scores(part, named_scores)


def _add_facts(c: Contribution, facts: tuple[int, ...] | list[int]) -> None:
    (a_pass, a_fail, t_prompt, t_completion, t_total, t_cached, t_requests,
     g_prompt, g_completion, g_total, g_cached) = facts  # fmt: skip
    c.assert_pass_count += a_pass
    c.assert_fail_count += a_fail
    c.token_prompt += t_prompt
    c.token_completion += t_completion
    c.token_total += t_total
    c.token_cached += t_cached
    c.token_num_requests += t_requests
    c.assert_token_prompt += g_prompt
    c.assert_token_completion += g_completion
    c.assert_token_total += g_total
    c.assert_token_cached += g_cached


def _add_named_scores(c: Contribution, named_scores: list[dict]) -> None:
    """Add results' named scores (metric → number) to `c`, a metric at a time: its values
    in the results' order, then one weight each. A value that is no finite number (a bool,
    text, NaN: its JSON is null) adds nothing."""
    sums, weights = c.named_score_sums, c.named_score_weights
    for key in dict.fromkeys(chain.from_iterable(named_scores)):
        values = list(map(dict.get, named_scores, repeat(key)))  # None where it is missing
        start = sums.get(key, 0.0)
        if {*map(type, values)} == _FLOAT_ONLY:
            total = reduce(add, values, start)
            if total - total == 0.0:  # all finite (NaN or an infinity would make it NaN)
                sums[key] = total
                weights[key] = weights.get(key, 0.0) + len(values)  # whole numbers: exact
                continue
        values = [number for number in map(_score_number, values) if number is not None]
        if values:
            sums[key] = reduce(add, values, start)
            weights[key] = weights.get(key, 0.0) + len(values)


_FLOAT_ONLY = {float}


def _score_number(value: Any) -> float | None:
    """A named score's value as a float, or None when it is no finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return number if math.isfinite(number) else None


# --- the stored metadata keys -----------------------------------------------------------


def key_text(value: Any) -> str | None:
    """A metadata key's value as its column stores it, lower-cased: a string as itself,
    true/false/null as those words, anything else as its JSON text. None: no such key.

    Filters compare these columns with the lower-cased value they are given, so an equals
    filter is an index lookup (evals.filters).
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    return (value if isinstance(value, str) else _encode(value)).lower()


_NO_KEYS = (None,) * len(KEY_COLUMNS)
_MISSING = object()


def metadata_keys(metadata: Any) -> tuple[str | None, ...]:
    """KEY_COLUMNS' values for one result's metadata: its three keys spelled out, as this
    runs for every result (a loop over KEY_COLUMNS cost 5,000 instructions more)."""
    if not metadata or not isinstance(metadata, dict):
        return _NO_KEYS
    get = metadata.get
    plugin, strategy, severity = (
        get("pluginId", _MISSING), get("strategyId", _MISSING), get("severity", _MISSING)
    )  # fmt: skip
    return (
        plugin.lower() if type(plugin) is str else _key_text(plugin),
        strategy.lower() if type(strategy) is str else _key_text(strategy),
        severity.lower() if type(severity) is str else _key_text(severity),
    )


def _key_text(value: Any) -> str | None:
    return None if value is _MISSING else key_text(value)


# --- what a search looks in -------------------------------------------------------------


def search_text(
    *, response: Any, vars_: Any, grading_result: Any, metadata: Any, error: str | None
) -> str:
    """The text a free-text search looks in, lower-cased: the output, the values of vars
    and metadata (their keys are not text anyone searches for, and would match every
    result that has them), the grading reason and the error, joined by spaces.

    A value that is not a string is its JSON text; a nested object's keys are in that. The
    payload of a data URL (`data:image/png;base64,…`) is left out.
    """
    return _search_text(response, vars_, grading_result, metadata, error)


def _search_text(response: Any, vars_: Any, grading: Any, metadata: Any, error: Any) -> str:
    parts = [
        response.get("output") if isinstance(response, dict) else None,
        *(vars_.values() if type(vars_) is dict else _values(vars_)),
        grading.get("reason") if isinstance(grading, dict) else None,
        *(metadata.values() if type(metadata) is dict else _values(metadata)),
    ]
    try:  # nearly always every part is text: join raises TypeError otherwise
        text = " ".join(parts)
    except TypeError:  # a missing part (None), or a value that is no text (its JSON)
        parts = [part if type(part) is str else _encode(part) for part in parts if part is not None]
        text = " ".join(parts)
    # An image or a sound in a var (vision evals) is not text to search. One search of
    # the joined text: no payload spans two parts (none holds a space).
    if "base64," in text:
        text = _DATA_URL_PAYLOAD.sub(r"\1…", text)
    if error:
        text = f"{text} {error}" if parts else error
    return text.lower()


def _values(values: Any) -> Any:
    """What is searched of vars or metadata: an object's values, a list's items, or the
    value itself."""
    if isinstance(values, dict):
        return values.values()
    return values if isinstance(values, list) else (values,)


_DATA_URL_PAYLOAD = re.compile(r"(data:[\w.+-]+/[\w.+-]+;base64,)[A-Za-z0-9+/=]+")


# --- one result --------------------------------------------------------------------------


def _number(
    result: dict, key: str, index: int, default: float = 0.0, limit: float = _FLOAT_INT_MAX
) -> float:
    """A finite number within ±`limit` (a column's range), or Invalid naming the field."""
    value = result.get(key)
    if value is None:
        return default
    kind = type(value)  # exact types: a bool is not a number here
    if ((kind is float and -_FLOAT_MAX <= value <= _FLOAT_MAX) or kind is int) and (
        -limit <= value <= limit
    ):
        return float(value)
    within = "" if limit == _FLOAT_INT_MAX else f" within ±{limit}"
    raise Invalid(
        f"results[{index}].{key} must be a finite number{within}, got {value!r}.",
        index=index,
        field=key,
    )


def _index(result: dict, key: str, index: int, limit: int = INT_COLUMN_MAX) -> int:
    value = result.get(key)
    if type(value) is int and 0 <= value <= limit:
        return value
    raise Invalid(
        f"results[{index}].{key} must be an integer from 0 to {limit}, got {value!r}.",
        index=index,
        field=key,
    )


def _json_field(result: dict, key: str, index: int, kinds: tuple[type, ...]) -> Any:
    value = result.get(key)
    if value is not None and not isinstance(value, kinds):
        names = " or ".join(
            k.__name__.replace("dict", "object").replace("str", "string") for k in kinds
        )
        raise Invalid(f"results[{index}].{key} must be {names}.", index=index, field=key)
    return value


_OBJECT = (dict,)
_OBJECT_OR_TEXT = (dict, str)
# The JSON fields of a result, in the order they are checked.
_JSON_FIELDS = (
    ("response", _OBJECT), ("gradingResult", _OBJECT), ("testCase", _OBJECT),
    ("metadata", _OBJECT), ("namedScores", _OBJECT), ("prompt", _OBJECT_OR_TEXT),
    ("provider", _OBJECT_OR_TEXT),
)  # fmt: skip
_JSON_KEYS = tuple(key for key, _ in _JSON_FIELDS)
_DICT_OR_NONE = {dict, type(None)}
_dumps = orjson.dumps


def _encode(value: Any) -> str:
    """JSON text through orjson, or the standard library for what orjson refuses."""
    try:
        return _dumps(value).decode()
    except TypeError:  # a huge int or a non-string key
        return fastjson.dumps(value)


def prepare_row(result: Any, index: int) -> tuple[tuple, Any, Any]:
    """promptfoo's EvaluateResult (camelCase) → (its ROW_COLUMNS values, its named scores,
    its vars: an object, iterated as the var names, or () when there is none), or Invalid
    naming the result and the field.

    Checks run in a fixed order (indices, success, numbers, then each JSON field), so a
    result with several faults is always refused for the same one. The common case, exact
    types, is tested inline; anything else takes the checking helpers above.
    """
    if type(result) is not dict and not isinstance(result, dict):
        raise Invalid(f"results[{index}] must be an object.", index=index, field=None)
    get = result.get
    prompt_idx = get("promptIdx")
    if type(prompt_idx) is not int or not 0 <= prompt_idx <= INT_COLUMN_MAX:
        prompt_idx = _index(result, "promptIdx", index)
    test_idx = get("testIdx")
    if type(test_idx) is not int or not 0 <= test_idx <= INT_COLUMN_MAX:
        test_idx = _index(result, "testIdx", index)
    success = get("success", False)
    if success is not True and success is not False:
        raise Invalid(
            f"results[{index}].success must be true or false.", index=index, field="success"
        )
    score = get("score")
    if type(score) is not float or not -_FLOAT_MAX <= score <= _FLOAT_MAX:
        score = _number(result, "score", index, 1.0 if success else 0.0)
    latency = get("latencyMs")
    if type(latency) is not int or not 0 <= latency <= INT_COLUMN_MAX:
        latency = int(_number(result, "latencyMs", index, limit=INT_COLUMN_MAX))
    values = tuple(map(get, _JSON_KEYS))
    if not {*map(type, values)} <= _DICT_OR_NONE:
        for (key, kinds), value in zip(_JSON_FIELDS, values, strict=True):
            if value is not None and type(value) is not dict:
                _json_field(result, key, index, kinds)  # Invalid unless one of `kinds`
    response, grading, test_case, metadata, named, prompt, provider = values
    error = get("error")
    if error is not None and type(error) is not str:
        error = error if isinstance(error, str) else canonical_json(error)
    cost = get("cost")
    if type(cost) is not float or cost - cost != 0.0:  # not a finite float (inf - inf is NaN)
        cost_default = response.get("cost") if response is not None else None
        cost = _number(
            result, "cost", index, cost_default if isinstance(cost_default, int | float) else 0.0
        )
    reason = get("failureReason")
    if reason is None:
        if success:
            reason = 0  # FailureReason.NONE
        elif error and not grading:
            reason = 2  # FailureReason.ERROR
        else:
            reason = 1  # FailureReason.ASSERT
    elif reason not in (0, 1, 2) or isinstance(reason, bool):
        raise Invalid(
            f"results[{index}].failureReason must be 0, 1 or 2, got {reason!r}.",
            index=index,
            field="failureReason",
        )
    elif success:
        # A passing result has no failure reason (as promptfoo writes them): each result
        # is in exactly one of the passes, failures and errors views.
        reason = 0
    else:
        reason = int(reason)
    if test_case is None:
        vars_ = get("vars")
        test_case = {"vars": vars_} if isinstance(vars_, dict) else {}
        vars_ = test_case.get("vars")
    else:
        vars_ = test_case.get("vars")
    if named is None:
        named = grading.get("namedScores") if grading is not None else None
        if not isinstance(named, dict):
            named = {}
    if prompt is None:
        prompt = {}
    elif isinstance(prompt, str):
        prompt = {"raw": prompt, "label": prompt}
    if provider is None:
        provider = {}
    elif isinstance(provider, str):
        provider = {"id": provider}
    try:
        texts = (
            _dumps(test_case).decode(),
            _dumps(prompt).decode(),
            _dumps(provider).decode(),
            None if response is None else _dumps(response).decode(),
            None if grading is None else _dumps(grading).decode(),
            _dumps(named).decode() if named else "{}",
            _dumps(metadata).decode() if metadata else "{}",
        )
    except TypeError:  # what orjson refuses (huge ints, non-string keys): the stdlib's way
        texts = (
            _encode(test_case), _encode(prompt), _encode(provider),
            None if response is None else _encode(response),
            None if grading is None else _encode(grading), _encode(named or {}),
            _encode(metadata or {}),
        )  # fmt: skip
    searched = _search_text(response, vars_, grading, metadata, error)
    row = (
        prompt_idx, test_idx, texts[0], texts[1], texts[2], texts[3], error or "", reason,
        success, score, latency, cost, texts[4], texts[5], texts[6], *metadata_keys(metadata),
        searched, *result_facts(response, grading),
    )  # fmt: skip
    return row, named, vars_ if type(vars_) is dict or isinstance(vars_, dict) else ()


# --- a batch -----------------------------------------------------------------------------


@dataclass
class PreparedBatch:
    """A batch of results validated and encoded, ready for evals.services.store_prepared.

    `rows` hold ROW_COLUMNS, one per (test, prompt) pair: a pair that repeats within the
    batch is kept once (`repeated` counts the others). `aggregates` is what the rows add to
    each prompt's aggregates, result by result into each outcome's part (`totalled` adds
    the outcomes into the totals). `media` holds the results that may hold media, by
    position in `rows`: the writer moves that media to blob storage and prepares them
    again.
    """

    rows: list[tuple]
    aggregates: dict[int, Contribution]
    var_names: list[str]
    media: dict[int, dict]
    repeated: int = 0

    @property
    def received(self) -> int:
        return len(self.rows) + self.repeated


def check_batch(results: Any) -> None:
    if not isinstance(results, list):
        raise Invalid("results must be a list.", field="results")
    limit = settings.RESULTS_BATCH_LIMIT
    if len(results) > limit:
        raise TooLarge(
            f"A batch holds at most {limit} results; this one has {len(results)}. Split it.",
            limit=limit,
        )


def prepare_results(results: Any) -> PreparedBatch:
    """Validate and prepare a batch; the first invalid result raises Invalid (its index and
    field), so a batch is stored whole or not at all.

    Per result, `prepare_row` and a two-line loop that groups the rows by prompt and
    outcome run in Python; the rest (dropping repeated pairs, the sums, var names, older
    results' outputs, the media check) runs through builtins over whole columns.
    """
    check_batch(results)
    if not results:
        return PreparedBatch(rows=[], aggregates={}, var_names=[], media={})
    rows, named_scores, var_lists = map(list, zip(*map(prepare_row, results, count()), strict=True))
    kept = results
    if len(set(map(_PAIR, rows))) != len(rows):
        rows, named_scores, var_lists, kept = _first_of_each_pair(
            rows, named_scores, var_lists, results
        )
    return PreparedBatch(
        rows=rows,
        aggregates=_aggregates(rows, named_scores),
        var_names=list(dict.fromkeys(chain.from_iterable(var_lists))),
        media=_maybe_media(rows, _outputs(kept), kept),
        repeated=len(results) - len(rows),
    )


_PAIR = itemgetter(TEST_IDX, PROMPT_IDX)
_ERROR = int(FailureReason.ERROR)


def _first_of_each_pair(rows: list[tuple], *others: list) -> list[list]:
    """`rows` and the lists beside them without the rows whose (test, prompt) pair an
    earlier row has (a batch that repeats a pair keeps the first)."""
    seen: set[tuple[int, int]] = set()
    keep = [i for i, pair in enumerate(map(_PAIR, rows)) if not (pair in seen or seen.add(pair))]
    return [list(map(values.__getitem__, keep)) for values in (rows, *others)]


def _aggregates(rows: list[tuple], named_scores: list[dict]) -> dict[int, Contribution]:
    """What the rows add to each prompt's aggregates, each outcome's part summed over its
    rows in the batch's order (so floats add up exactly as one by one)."""
    # (prompt, success, an error?) → positions: a prompt's outcome (outcome_of).
    groups: dict[tuple[int, bool, bool], list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        groups[row[PROMPT_IDX], row[SUCCESS], row[FAILURE_REASON] == _ERROR].append(position)
    aggregates: dict[int, Contribution] = {}
    for (prompt_idx, success, error), positions in groups.items():
        outcome = "pass" if success else "error" if error else "fail"
        contribution = aggregates.get(prompt_idx)
        if contribution is None:
            contribution = aggregates[prompt_idx] = Contribution()
        _add_results(
            contribution.outcome(outcome), outcome,
            _NUMBERS(list(zip(*map(rows.__getitem__, positions), strict=True))),
            list(map(named_scores.__getitem__, positions)),
        )  # fmt: skip
    return aggregates


def _outputs(results: list[Any]) -> list[tuple[int, str]]:
    """Older results' top-level output (promptfoo put it there once) as text, by position."""
    outputs = list(map(dict.get, results, repeat("output")))
    if outputs.count(None) == len(outputs):
        return []
    return [
        (position, output if isinstance(output, str) else fastjson.dumps(output))
        for position, output in enumerate(outputs)
        if output is not None
    ]


def _maybe_media(
    rows: list[tuple], outputs: list[tuple[int, str]], results: list[Any]
) -> dict[int, dict]:
    """The results whose JSON shows a media marker (nearly always none), by position.

    One substring search per marker over the batch's texts (blobs.services) instead of a
    walk of every string of every result: the JSON of the columns that can hold media,
    then older results' top-level outputs.
    """
    try:
        from blobs.services import texts_with_media_marker
    except ImportError:  # pragma: no cover - the blobs app is part of the project
        return {}
    texts = [*chain.from_iterable(map(_MEDIA_TEXTS, rows)), *(text for _, text in outputs)]
    per_row, in_rows = len(MEDIA_POSITIONS), len(rows) * len(MEDIA_POSITIONS)
    owners = (i // per_row if i < in_rows else outputs[i - in_rows][0] for i in
              sorted(texts_with_media_marker(texts)))  # fmt: skip
    return {owner: results[owner] for owner in owners}
