"""Every error the API answers, in one shape: `{"detail": ...}` with the status code, never a stack trace.

Problems with a submitted spec travel as data (`sweep_service.spec.Problem`: a location and a reason) and
are formatted here, once, into FastAPI's documented 422 item (loc/msg/type) plus a dotted `path`.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorResponse
from sweep_service.problems import Loc, dotted

log = logging.getLogger("rfsweep.api")


class HTTPError(Exception):
    """An answer other than 2xx, raised from a route."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        self.status, self.detail, self.headers = status, detail, headers


MAX_ITEMS = 20  # a 422 names at most this many problems (and says how many more there were)
MAX_MESSAGE = 500  # characters of one problem's message
MAX_KEY = 100  # characters of one key of a location


class InvalidSpec(Exception):
    """422: one item per offending location (see `field_error`), the first MAX_ITEMS of them."""

    def __init__(self, errors: list[dict[str, Any]]):
        if len(errors) > MAX_ITEMS:
            more = len(errors) - MAX_ITEMS + 1
            errors = [*errors[: MAX_ITEMS - 1], field_error((), f"… and {more} more problems", "too_many_problems")]
        super().__init__("; ".join(f"{e['path']}: {e['msg']}" for e in errors))
        self.errors = errors


def field_error(loc: Loc, msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One problem with the request body, in FastAPI's shape (loc/msg/type) plus a dotted `path`; long messages
    and keys are cut short (an answer never echoes unbounded input)."""
    loc = tuple(_short(part, MAX_KEY) if isinstance(part, str) else part for part in loc)
    return {"loc": ["body", *loc], "msg": _short(msg, MAX_MESSAGE), "type": kind, "path": dotted(loc) or "body"}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_response(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


_DESCRIPTIONS = {
    401: "Missing or wrong bearer token.",
    403: "A browser's cross-origin write while the server has no token (see RFSWEEP_ALLOWED_ORIGINS).",
    404: "No sweep with this id.",
    409: "Conflict (see detail).",
    413: "Body larger than the server's limit.",
    415: "Body is neither JSON nor YAML.",
    503: "Not ready (see checks).",
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that may answer these error codes."""
    return {c: {"model": ErrorResponse, "description": _DESCRIPTIONS[c]} for c in codes}


def _documented_methods(request: Request) -> set[str]:
    """The methods the OpenAPI document gives the request's path (HEAD with GET, as Starlette serves it).

    Read from the document rather than from the router: FastAPI keeps an included router as one opaque route."""
    from starlette.routing import compile_path

    app = request.app
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for path, operations in app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in operations if m.lower() in _HTTP_METHODS}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((compile_path(path)[0], methods))
        app.state.allowed_methods = table
    return set().union(*(methods for regex, methods in table if regex.match(request.url.path)))


_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPError)
    async def _http_error(_request: Request, exc: HTTPError) -> JSONResponse:
        return error_response(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; one path has several routes here.
            methods = set(filter(None, (m.strip() for m in headers.get("Allow", "").split(","))))
            headers["Allow"] = ", ".join(sorted(methods | _documented_methods(request)))
        return error_response(exc.status_code, exc.detail, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [p if isinstance(p, (int, str)) else str(p) for p in err.get("loc", ())]
            errors.append(
                {"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "value_error"), "path": dotted(loc)}
            )
        return error_response(422, errors)

    @app.exception_handler(InvalidSpec)
    async def _invalid_spec(_request: Request, exc: InvalidSpec) -> JSONResponse:
        return error_response(422, exc.errors)

    # Anything else is answered 500 by `middleware.AnswerServerErrors` (logged there, once, briefly).


def log_unexpected(exc: BaseException) -> None:
    """One log record for an unexpected exception: its type, its message cut short and its innermost frames
    (a RecursionError's thousand frames, or a message quoting a huge value, would flood the log)."""
    frames = "".join(traceback.format_exception(exc, limit=-12, chain=False))
    log.error("unhandled %s: %s\n%s", type(exc).__name__, _short(str(exc), MAX_MESSAGE), _short(frames, 8000))
