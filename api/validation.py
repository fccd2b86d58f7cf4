"""A request body → a checked sweep spec: its media type, the text read with bounded cost, the published schema
(JSON), the spec model, and the server's limits on what a sweep may cost. Problems come back as `InvalidSpec`
(422), one item per location."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from api.errors import InvalidSpec, field_error
from api.openapi import import_spec_model, spec_schemas
from api.settings import Settings

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)
SCHEMA_ERRORS_READ = 200  # a body with thousands of type errors is answered from its first ones


class UnsupportedMediaType(Exception):
    pass


@dataclass(frozen=True)
class Body:
    data: Any
    from_yaml: bool  # YAML is for people: its loose scalars go to the spec model's coercion


@dataclass(frozen=True)
class CheckedSpec:
    data: dict[str, Any]
    name: str
    total_trials: int | None
    max_epochs: int | None
    request_hash: str


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_spec_media(content_type: str | None) -> bool:
    """Whether the body says it is JSON or YAML. A body without one of these types is refused (415): a browser
    sends a form or text/plain across origins without asking, never these."""
    media = media_type(content_type)
    return media in YAML_TYPES or media in JSON_TYPES or media.endswith("+json")


def parse_body(raw: bytes, content_type: str | None) -> Body:
    """The body as JSON data, read with bounded cost (`sweep_service.spec.document`). Call from a worker thread:
    the first call may wait for the spec model's import."""
    import_spec_model()
    from sweep_service.spec import SpecError, read_json, read_yaml

    if not is_spec_media(content_type):
        raise UnsupportedMediaType(media_type(content_type) or "(none)")
    from_yaml = media_type(content_type) in YAML_TYPES
    try:
        return Body(read_yaml(raw) if from_yaml else read_json(raw), from_yaml=from_yaml)
    except SpecError as exc:
        raise InvalidSpec(
            [field_error(p.loc, p.msg, "yaml_invalid" if from_yaml else "json_invalid") for p in exc.problems]
        ) from None


def canonical_hash(data: Any) -> str:
    """Same spec, same hash, whether it came as JSON or YAML and in whatever key order."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def schema_validator() -> Draft202012Validator:
    """The spec's JSON Schema as published in /openapi.json (its structure and types; the limits are checked
    with the settings' names in the message), compiled once."""
    from jsonschema import Draft202012Validator

    document = {"$ref": "#/components/schemas/SweepSpec", "components": {"schemas": spec_schemas()}}
    return Draft202012Validator(document)


def schema_errors(data: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Strict type checks of a JSON body against the published schema (pydantic alone would coerce
    `false` to 0 or "3" to 3, accepting documents the schema rejects)."""
    from jsonschema.exceptions import best_match, relevance

    out = []
    found_errors = itertools.islice(schema_validator().iter_errors(data), SCHEMA_ERRORS_READ)
    for found in sorted(found_errors, key=relevance)[:limit]:
        # Of the branches of an anyOf, the one of the value's own type says what is wrong with it.
        branches = [e for e in found.context or () if e.validator != "type"] or found.context
        error = best_match(branches) if branches else found
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema or {}).get("properties", {}))
            for key in error.instance:
                if key not in known:
                    out.append(field_error((*error.absolute_path, key), "unknown field", "extra_forbidden"))
            continue
        out.append(field_error(tuple(error.absolute_path), error.message, f"schema_{error.validator}"))
    return out[:limit]


def check_spec(body: Body, settings: Settings) -> CheckedSpec:
    data = body.data
    if not isinstance(data, dict):
        raise InvalidSpec([field_error((), "a sweep spec must be a JSON/YAML object", "dict_type")])
    if not body.from_yaml:  # JSON bodies are held to the published schema's types
        errors = schema_errors(data)
        if errors:
            raise InvalidSpec(errors)
    import_spec_model()
    from sweep_service.budget import max_epochs
    from sweep_service.spec import SpecError, parse_spec

    errors = []
    tracking = data.get("tracking")
    if isinstance(tracking, dict) and tracking.get("uri") not in (None, ""):
        message = "set by the server (MLFLOW_TRACKING_URI); leave it out of specs sent to the API"
        errors.append(field_error(("tracking", "uri"), message, "not_allowed"))
    try:
        spec = parse_spec(data, settings.cost_limits)
    except SpecError as exc:
        taken = {tuple(e["loc"]) for e in errors}
        errors += [field_error(p.loc, p.msg, p.kind) for p in exc.problems if ("body", *p.loc) not in taken]
    if errors:
        raise InvalidSpec(errors)
    return CheckedSpec(data, spec.name, spec.total_trials, max_epochs(spec), canonical_hash(data))
