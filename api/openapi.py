"""The OpenAPI document: FastAPI's, with the sweep spec's JSON Schema among its components (the POST body is
raw JSON or YAML, so FastAPI cannot see the model), which is also what JSON bodies are checked against."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sweep_service.limits import CostLimits

_SPEC_IMPORT = threading.Lock()

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


def import_spec_model() -> None:
    """Import `sweep_service.spec` and `sweep_service.budget` (and under them rf_core and torch), one thread at a
    time; call before importing from them in the API. The API imports them in a warm-up thread while its first
    requests may need them too, and torch's import is not safe from two threads at once (pytorch/pytorch#182560:
    concurrent nested imports fail, "'torch._C' is not a package"): the request waits for the warm-up instead."""
    with _SPEC_IMPORT:
        import sweep_service.budget
        import sweep_service.spec  # noqa: F401


@cache
def spec_schemas(limits: CostLimits | None = None) -> dict[str, Any]:
    """The sweep spec's JSON Schema (with `limits` stated in it, if given), its $defs hoisted into OpenAPI
    components (prefixed `Spec` so that a spec model never collides with a response model of the same name)."""
    import_spec_model()
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
