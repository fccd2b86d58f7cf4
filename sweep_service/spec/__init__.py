"""The sweep spec: loading a YAML/JSON document into a checked `SweepSpec`, and its JSON Schema.

The text is read with bounded cost (`document`); then pydantic checks the structure (`model`), `checks` what
needs rf_core's knowledge and, when asked, `costs` what the sweep may cost (`sweep_service.limits`). Each
raises `SpecError`, whose `.problems` name each location in the document and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweep_service.limits import CostLimits
from sweep_service.problems import Loc, Problem, SpecError, dotted
from sweep_service.spec.checks import semantic_problems
from sweep_service.spec.costs import cost_problems, state_in_schema
from sweep_service.spec.document import read_json, read_yaml
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
    "dotted",
    "is_bundle",
    "load_spec_file",
    "load_spec_text",
    "parse_spec",
    "points_for_rule",
    "read_json",
    "read_yaml",
    "same_value",
    "spec_json_schema",
]


def parse_spec(data: Any, limits: CostLimits | None = None) -> SweepSpec:
    """Validate a parsed YAML/JSON document (and, given `limits`, what it may cost); raises SpecError naming each
    problem's location."""
    if not isinstance(data, dict):
        raise SpecError([Problem((), f"a sweep spec is a mapping, got {type(data).__name__}")])
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc)) from None
    try:
        problems = semantic_problems(spec)
    except ValueError as exc:  # a value no check foresaw, raised by rf_core: still an answer, not a crash
        problems = [Problem((), str(exc))]
    if limits is not None:  # a limit is the reason that counts where a value breaks one
        over = cost_problems(spec, limits)
        taken = {p.loc for p in over}
        problems = over + [p for p in problems if p.loc not in taken]
    if problems:
        raise SpecError(problems)
    return spec


def load_spec_text(text: str, limits: CostLimits | None = None) -> SweepSpec:
    """A spec from YAML (or JSON, which is YAML too)."""
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
