"""The OpenAPI document: FastAPI's, with the sweep spec's JSON Schema among its components (the POST body is
raw JSON or YAML, so FastAPI cannot see the model), which is also what JSON bodies are checked against."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sweep_service.limits import CostLimits

SPEC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A sweep spec (the same document `rfsweep sweep` reads), as JSON or YAML.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SweepSpec"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def install(app: FastAPI, limits: CostLimits | None = None) -> None:
    """Serve the document with the spec's schemas in it, stating the server's `limits` (built on the first
    request for /openapi.json)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(spec_schemas(limits))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


@cache
def spec_schemas(limits: CostLimits | None = None) -> dict[str, Any]:
    """The sweep spec's JSON Schema (with `limits` stated in it, if given), its $defs hoisted into OpenAPI
    components (prefixed `Spec` so that a spec model never collides with a response model of the same name)."""
    from sweep_service.spec import spec_json_schema

    schema = spec_json_schema(limits)
    schema.pop("$schema", None)
    text = json.dumps(schema)
    for old in ('"#/$defs/', '"#/definitions/'):
        text = text.replace(old, '"#/components/schemas/Spec')
    schema = json.loads(text)
    defs = schema.pop("$defs", {}) or schema.pop("definitions", {})
    out = {f"Spec{name}": value for name, value in defs.items()}
    out["SweepSpec"] = schema
    # The model needs the discriminator of a tagged union (e.g. scheduler.type); say so in the schema.
    for node in _walk(list(out.values())):
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and isinstance(discriminator.get("mapping"), dict):
            prop = discriminator.get("propertyName")
            for ref in discriminator["mapping"].values():
                target = out.get(str(ref).rsplit("/", 1)[-1])
                if target is not None and prop and prop not in target.setdefault("required", []):
                    target["required"].append(prop)
    return out


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
