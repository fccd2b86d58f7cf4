"""The sweep spec: loading a YAML/JSON document into a checked `SweepSpec`, and its JSON Schema.

Two passes: pydantic checks the structure (`model`), then `checks` what needs rf_core's knowledge. Either
raises `SpecError`, whose `.problems` name each location in the document and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sweep_service.problems import Loc, Problem, SpecError, dotted
from sweep_service.spec.checks import semantic_problems
from sweep_service.spec.model import (
    CONST_TAG,
    DIST_TAG,
    PAPER_PARAMETERS,
    Distribution,
    SweepSpec,
    is_bundle,
    points_for_rule,
    same_value,
)

__all__ = [
    "PAPER_PARAMETERS",
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
    "same_value",
    "spec_json_schema",
]


def parse_spec(data: Any) -> SweepSpec:
    """Validate a parsed YAML/JSON document; raises SpecError naming each problem's location."""
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
    if problems:
        raise SpecError(problems)
    return spec


def load_spec_text(text: str) -> SweepSpec:
    """A spec from YAML (or JSON, which is YAML too)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError([Problem((), f"not valid YAML/JSON: {exc}")]) from None
    return parse_spec(data)


def load_spec_file(path: str | Path) -> SweepSpec:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError([Problem((), f"cannot read {path}: {exc.strerror or exc}")]) from None
    return load_spec_text(text)


def spec_json_schema() -> dict[str, Any]:
    schema = SweepSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "rfsweep sweep spec")
    return schema


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    return [Problem(_document_loc(err["loc"]), _friendly(err)) for err in exc.errors(include_url=False)]


def _document_loc(loc: tuple[str | int, ...]) -> Loc:
    """Pydantic's location without its own union and validator tags: a path in the document."""
    return tuple(
        part
        for part in loc
        if part not in (DIST_TAG, CONST_TAG)
        and not (isinstance(part, str) and part.startswith(("function-", "union[")))
    )


def _friendly(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"])
