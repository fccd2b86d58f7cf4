"""Turning a request body into a checked sweep spec: parsing, the spec model, the server's limits."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from api.settings import Settings

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)


class InvalidSpec(Exception):
    """422: a list of {loc, msg} naming each offending field."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{e['path']}: {e['msg']}" for e in errors))
        self.errors = errors


class UnsupportedMediaType(Exception):
    pass


def field_error(path: str, msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One error in FastAPI's documented shape (loc/msg/type) plus a dotted `path`."""
    loc: list[str | int] = ["body"]
    for index, name in re.findall(r"\[([0-9]+)\]|([^.\[\]]+)", str(path)):
        loc.append(int(index) if index else (int(name) if name.isascii() and name.isdigit() else name))
    return {"loc": loc, "msg": msg, "type": kind, "path": str(path) or "body"}


@dataclass
class CheckedSpec:
    data: dict[str, Any]
    name: str | None
    total_trials: int | None
    max_epochs: int | None
    request_hash: str


def parse_body(raw: bytes, content_type: str | None) -> Any:
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media in YAML_TYPES:
        try:
            return yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidSpec([field_error("", f"not valid YAML: {_first_line(exc)}", "yaml_invalid")])
    if media in JSON_TYPES or media.endswith("+json"):
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidSpec([field_error("", f"not valid JSON: {_first_line(exc)}", "json_invalid")])
    raise UnsupportedMediaType(media)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def canonical_hash(data: Any) -> str:
    """Same spec, same hash, whether it came as JSON or YAML and in whatever key order."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def _schema_validator():
    """The spec's JSON Schema as published in /openapi.json, compiled once."""
    from jsonschema import Draft202012Validator

    from api.app import _spec_schemas

    schemas = _spec_schemas()
    document = {"$ref": "#/components/schemas/SweepSpec", "components": {"schemas": schemas}}
    return Draft202012Validator(document)


def schema_errors(data: Any, limit: int = 20) -> list[dict[str, Any]]:
    """Strict type checks of a JSON body against the published schema (pydantic alone would coerce
    `false` to 0 or "3" to 3, accepting documents the schema rejects)."""
    from jsonschema.exceptions import best_match, relevance

    out = []
    for error in sorted(_schema_validator().iter_errors(data), key=relevance)[:limit]:
        if error.context:
            error = best_match(error.context)
        path = _dotted(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema or {}).get("properties", {}))
            for key in error.instance:
                if key not in known:
                    out.append(field_error(_dotted([*error.absolute_path, key]), "unknown field", "extra_forbidden"))
            continue
        message = error.message if len(error.message) < 300 else error.message[:297] + "..."
        out.append(field_error(path, message, f"schema_{error.validator}"))
    return out[:limit]


def _dotted(parts) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def check_spec(data: Any, settings: Settings, *, strict_types: bool = True) -> CheckedSpec:
    if not isinstance(data, dict):
        raise InvalidSpec([field_error("", "a sweep spec must be a JSON/YAML object", "dict_type")])
    if strict_types:
        errors = schema_errors(data)
        if errors:
            raise InvalidSpec(errors)
    from sweep_service.spec import SpecError, parse_spec

    try:
        spec = parse_spec(data)
    except SpecError as exc:
        errors = getattr(exc, "errors", None) or [{"loc": "", "msg": str(exc)}]
        raise InvalidSpec([field_error(_loc(e.get("loc")), str(e.get("msg", ""))) for e in errors])
    except ValueError as exc:  # defensive: a validator that raised something else
        raise InvalidSpec([field_error("", str(exc))])
    errors = limit_errors(spec, data, settings)
    total_trials, max_epochs = _budget(spec)
    if total_trials is not None and total_trials > settings.limit_total_trials:
        errors.append(
            field_error(
                "search.num_samples",
                f"{total_trials} trials in all exceeds the server limit of {settings.limit_total_trials} "
                "(RFSWEEP_LIMIT_TOTAL_TRIALS)",
                "limit_exceeded",
            )
        )
    if errors:
        raise InvalidSpec(errors)
    name = getattr(spec, "name", None) if isinstance(getattr(spec, "name", None), str) else None
    return CheckedSpec(data, name, total_trials, max_epochs, canonical_hash(data))


def _loc(loc: Any) -> str:
    if isinstance(loc, (list, tuple)):
        return ".".join(str(p) for p in loc)
    return "" if loc is None else str(loc)


def _budget(spec: Any) -> tuple[int | None, int | None]:
    try:
        from sweep_service.budget import max_epochs, total_trials

        return int(total_trials(spec)), int(max_epochs(spec))
    except Exception:  # the budget preview is informative; never fail a submission on it
        return None, None


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else getattr(data, key, None)
    return data


def limit_errors(spec: Any, raw: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Per-request limits the operator sets, so one request cannot exhaust the cluster."""
    errors = []

    def over(path: tuple[str, ...], limit: float, env: str, what: str) -> None:
        value = _get(spec, *path)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > limit:
            errors.append(
                field_error(
                    ".".join(path), f"{what} {value:g} exceeds the server limit of {limit:g} ({env})", "limit_exceeded"
                )
            )

    over(("search", "num_samples"), settings.limit_num_samples, "RFSWEEP_LIMIT_NUM_SAMPLES", "num_samples")
    over(("scheduler", "max_t"), settings.limit_max_t, "RFSWEEP_LIMIT_MAX_T", "max_t")
    over(
        ("search", "max_concurrent_trials"),
        settings.limit_concurrency,
        "RFSWEEP_LIMIT_CONCURRENCY",
        "max_concurrent_trials",
    )
    over(("resources", "cpu"), settings.limit_cpu_per_trial, "RFSWEEP_LIMIT_CPU_PER_TRIAL", "cpu per trial")
    over(("resources", "gpu"), settings.limit_gpu_per_trial, "RFSWEEP_LIMIT_GPU_PER_TRIAL", "gpu per trial")
    if _get(raw, "tracking", "uri") not in (None, ""):
        errors.append(
            field_error(
                "tracking.uri",
                "set by the server (MLFLOW_TRACKING_URI); leave it out of specs sent to the API",
                "not_allowed",
            )
        )
    return errors
