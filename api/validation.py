"""A request body → a checked sweep spec: its media type, the published schema (JSON), the spec model, and
the server's per-request limits. Problems come back as `InvalidSpec` (422), one item per location."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import yaml

from api.errors import InvalidSpec, field_error
from api.openapi import spec_schemas
from api.settings import Settings

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

    from sweep_service.spec import SweepSpec

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)


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


def parse_body(raw: bytes, content_type: str | None) -> Body:
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media in YAML_TYPES:
        try:
            return Body(yaml.safe_load(raw.decode("utf-8")), from_yaml=True)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidSpec([field_error((), f"not valid YAML: {_first_line(exc)}", "yaml_invalid")]) from None
    if media in JSON_TYPES or media.endswith("+json"):
        try:
            return Body(json.loads(raw), from_yaml=False)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidSpec([field_error((), f"not valid JSON: {_first_line(exc)}", "json_invalid")]) from None
    raise UnsupportedMediaType(media)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def canonical_hash(data: Any) -> str:
    """Same spec, same hash, whether it came as JSON or YAML and in whatever key order."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def schema_validator() -> Draft202012Validator:
    """The spec's JSON Schema as published in /openapi.json, compiled once."""
    from jsonschema import Draft202012Validator

    document = {"$ref": "#/components/schemas/SweepSpec", "components": {"schemas": spec_schemas()}}
    return Draft202012Validator(document)


def schema_errors(data: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Strict type checks of a JSON body against the published schema (pydantic alone would coerce
    `false` to 0 or "3" to 3, accepting documents the schema rejects)."""
    from jsonschema.exceptions import best_match, relevance

    out = []
    for found in sorted(schema_validator().iter_errors(data), key=relevance)[:limit]:
        error = best_match(found.context) if found.context else found
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema or {}).get("properties", {}))
            for key in error.instance:
                if key not in known:
                    out.append(field_error((*error.absolute_path, key), "unknown field", "extra_forbidden"))
            continue
        message = error.message if len(error.message) < 300 else error.message[:297] + "..."
        out.append(field_error(tuple(error.absolute_path), message, f"schema_{error.validator}"))
    return out[:limit]


def check_spec(body: Body, settings: Settings) -> CheckedSpec:
    data = body.data
    if not isinstance(data, dict):
        raise InvalidSpec([field_error((), "a sweep spec must be a JSON/YAML object", "dict_type")])
    if not body.from_yaml:  # JSON bodies are held to the published schema's types
        errors = schema_errors(data)
        if errors:
            raise InvalidSpec(errors)
    from sweep_service.budget import max_epochs, total_trials
    from sweep_service.spec import SpecError, parse_spec

    try:
        spec = parse_spec(data)
    except SpecError as exc:
        raise InvalidSpec([field_error(p.loc, p.msg) for p in exc.problems]) from None
    errors = limit_errors(spec, data, settings)
    trials = total_trials(spec)
    if trials > settings.limit_total_trials:
        message = (
            f"{trials} trials in all exceeds the server limit of {settings.limit_total_trials} "
            "(RFSWEEP_LIMIT_TOTAL_TRIALS)"
        )
        errors.append(field_error(("search", "num_samples"), message, "limit_exceeded"))
    if errors:
        raise InvalidSpec(errors)
    return CheckedSpec(data, spec.name, trials, max_epochs(spec), canonical_hash(data))


def limit_errors(spec: SweepSpec, raw: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Per-request limits the operator sets, so one request cannot exhaust the cluster."""
    errors = []

    def over(loc: tuple[str, str], value: float | None, limit: float, env: str, what: str) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > limit:
            message = f"{what} {value:g} exceeds the server limit of {limit:g} ({env})"
            errors.append(field_error(loc, message, "limit_exceeded"))

    search, resources = spec.search, spec.resources
    over(
        ("search", "num_samples"),
        search.num_samples,
        settings.limit_num_samples,
        "RFSWEEP_LIMIT_NUM_SAMPLES",
        "num_samples",
    )
    over(("scheduler", "max_t"), spec.max_t, settings.limit_max_t, "RFSWEEP_LIMIT_MAX_T", "max_t")
    over(
        ("search", "max_concurrent_trials"),
        search.max_concurrent_trials,
        settings.limit_concurrency,
        "RFSWEEP_LIMIT_CONCURRENCY",
        "max_concurrent_trials",
    )
    over(
        ("resources", "cpu"),
        resources.cpu,
        settings.limit_cpu_per_trial,
        "RFSWEEP_LIMIT_CPU_PER_TRIAL",
        "cpu per trial",
    )
    over(
        ("resources", "gpu"),
        resources.gpu,
        settings.limit_gpu_per_trial,
        "RFSWEEP_LIMIT_GPU_PER_TRIAL",
        "gpu per trial",
    )
    tracking = raw.get("tracking")
    if isinstance(tracking, dict) and tracking.get("uri") not in (None, ""):
        message = "set by the server (MLFLOW_TRACKING_URI); leave it out of specs sent to the API"
        errors.append(field_error(("tracking", "uri"), message, "not_allowed"))
    return errors
