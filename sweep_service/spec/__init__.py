"""The sweep spec: loading a YAML/JSON document into a checked `SweepSpec`, and its JSON Schema.

The text is read with bounded cost (`document`); then pydantic checks the structure (`model`), `checks` what
needs rf_core's knowledge and, when asked, `costs` what the sweep may cost (`sweep_service.limits`). Each
raises `SpecError`, whose `.problems` name each location in the document and the reason.
"""

from __future__ import annotations

import copy
import difflib
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweep_service.limits import CostLimits
from sweep_service.problems import Loc, Problem, SpecError, dotted
from sweep_service.spec.checks import semantic_problems
from sweep_service.spec.costs import cost_problems, state_in_schema
from sweep_service.spec.document import read_json, read_yaml, source_lines
from sweep_service.spec.model import (
    CONST_TAG,
    DIST_TAG,
    PAPER_PARAMETERS,
    SCHEDULER_TYPES,
    Distribution,
    SweepSpec,
    is_bundle,
    points_for_rule,
    same_value,
)

__all__ = [
    "PAPER_PARAMETERS",
    "CostLimits",
    "Distribution",
    "Loc",
    "Problem",
    "SpecError",
    "SweepSpec",
    "did_you_mean",
    "dotted",
    "is_bundle",
    "line_of",
    "load_spec_file",
    "load_spec_text",
    "parse_spec",
    "points_for_rule",
    "read_json",
    "read_yaml",
    "same_value",
    "source_lines",
    "spec_json_schema",
]


def parse_spec(data: Any, limits: CostLimits | None = None) -> SweepSpec:
    """Validate a parsed YAML/JSON document (and, given `limits`, what it may cost); raises SpecError naming each
    problem's location.

    All problems in one pass: when the document's structure is wrong somewhere, the checks that need rf_core
    (and the limits) still run on the rest of it (the wrong parts left out), so a user fixes everything at once."""
    if not isinstance(data, dict):
        raise SpecError([Problem((), f"a sweep spec is a mapping, got {type(data).__name__}")])
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc)
        raise SpecError(problems + _problems_of_the_rest(data, problems, limits)) from None
    problems = _semantic(spec, limits)
    if problems:
        raise SpecError(problems)
    return spec


def _semantic(spec: SweepSpec, limits: CostLimits | None) -> list[Problem]:
    """rf_core's checks and, given `limits`, the cost limits (a limit is the reason that counts where a value
    breaks one)."""
    try:
        problems = semantic_problems(spec)
    except ValueError as exc:  # a value no check foresaw, raised by rf_core: still an answer, not a crash
        problems = [Problem((), str(exc))]
    if limits is not None:
        over = cost_problems(spec, limits)
        taken = {p.loc for p in over}
        problems = over + [p for p in problems if p.loc not in taken]
    return problems


def _problems_of_the_rest(data: dict[str, Any], found: list[Problem], limits: CostLimits | None) -> list[Problem]:
    """The semantic problems of the document with the structurally wrong parts taken out (a part the spec
    needs is put back with a stand-in); none under a location already reported."""
    pruned = copy.deepcopy(data)
    removed: list[Loc] = []
    for _ in range(4):
        try:
            spec = SweepSpec.model_validate(pruned)
            break
        except ValidationError as exc:
            for problem in reversed(_pydantic_problems(exc)):  # a list's later items first: indices hold
                removed.append(problem.loc)
                if not _delete(pruned, problem.loc):
                    return []
    else:
        return []
    reported = {loc for loc in [p.loc for p in found] + removed if loc}  # a set: linear in the problems
    return [p for p in _semantic(spec, limits) if not any(p.loc[:end] in reported for end in range(1, len(p.loc) + 1))]


def _delete(data: Any, loc: Loc) -> bool:
    """Take the value at `loc` out of the document (a required field gets a stand-in); False if impossible."""
    if not loc:
        return False
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = loc[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        del parent[last]
        return True
    if isinstance(parent, dict) and loc == ("name",):
        parent["name"] = "unnamed"  # required: a stand-in so the rest can be checked
        return True
    return len(loc) > 1 and _delete(data, loc[:-1])


def did_you_mean(problem: Problem) -> str:
    """For an unknown name: `; did you mean X?` with the closest allowed name at that place, else ''."""
    if not problem.loc or not isinstance(problem.loc[-1], str) or "unknown" not in problem.msg:
        return ""
    close = difflib.get_close_matches(problem.loc[-1], _names_at(problem.loc[:-1]), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _names_at(prefix: Loc) -> list[str]:
    """The names allowed at a place of the document: a section's fields, or training-config fields."""
    from rf_core import ALL_FIELDS, available_rules

    if prefix[:1] in (("parameters",), ("algorithm_parameters",)) and len(prefix) in (1, 2):
        return sorted(ALL_FIELDS) if prefix[:1] == ("parameters",) or len(prefix) == 2 else list(available_rules())
    if prefix == ("algorithm",) or (len(prefix) == 2 and prefix[0] == "algorithm"):
        return list(available_rules())
    model: Any = SweepSpec
    for part in prefix:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        candidates = [a for a in typing.get_args(field.annotation) or [field.annotation] if hasattr(a, "model_fields")]
        if not candidates:
            return []
        model = candidates[0]
    return list(getattr(model, "model_fields", {}))


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, or of its nearest ancestor in the document (a missing field: its section)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def load_spec_text(text: str | bytes, limits: CostLimits | None = None) -> SweepSpec:
    """A spec from YAML (or JSON, which is YAML too); bytes must be UTF-8."""
    return parse_spec(read_yaml(text), limits)


def load_spec_file(path: str | Path, limits: CostLimits | None = None) -> SweepSpec:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError([Problem((), f"cannot read {path}: {exc.strerror or exc}")]) from None
    return parse_spec(read_yaml(text), limits)


def spec_json_schema(limits: CostLimits | None = CostLimits()) -> dict[str, Any]:
    """The spec's JSON Schema; with `limits` (the defaults unless None), the limits stated in it."""
    schema = SweepSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "rfsweep sweep spec")
    return state_in_schema(schema, limits) if limits is not None else schema


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    return [Problem(_document_loc(err["loc"]), _friendly(err)) for err in exc.errors(include_url=False)]


def _document_loc(loc: tuple[str | int, ...]) -> Loc:
    """Pydantic's location without its own union and validator tags (the scheduler's type among them): a path
    in the document."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if part not in (DIST_TAG, CONST_TAG)
        and not (isinstance(part, str) and part.startswith(("function-", "union[")))
        and not (i > 0 and loc[i - 1] == "scheduler" and part in SCHEDULER_TYPES)
    )


def _friendly(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"])
