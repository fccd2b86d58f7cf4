"""The HTTP API: FastAPI app factory, routes, auth, limits, error bodies."""

import hmac
import logging
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import store
from api.db import Sweep, make_engine, make_sessionmaker, upgrade
from api.schemas import (
    BestResponse,
    BestTrial,
    ErrorResponse,
    Health,
    Links,
    MlflowInfo,
    Progress,
    Readiness,
    SweepCreated,
    SweepDetail,
    SweepPage,
    SweepSummary,
    Trial,
    TrialsResponse,
)
from api.settings import Settings, get_settings
from api.validation import (
    JSON_TYPES,
    YAML_TYPES,
    InvalidSpec,
    UnsupportedMediaType,
    check_spec,
    parse_body,
)

log = logging.getLogger("rfsweep.api")

CURSOR_PATTERN = r"^[0-9a-z]{1,13}$"
SweepId = Annotated[str, Path(description="The sweep's id (opaque string).")]
bearer = HTTPBearer(auto_error=False, description="RFSWEEP_API_TOKEN, when the server sets one.")


class HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        self.status, self.detail, self.headers = status, detail, headers


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _responses(*codes: int) -> dict[int, dict[str, Any]]:
    text = {
        401: "Missing or wrong bearer token.",
        404: "No sweep with this id.",
        409: "Conflict (see detail).",
        413: "Body larger than the server's limit.",
        415: "Body is neither JSON nor YAML.",
        503: "Not ready (see checks).",
    }
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


class BodySizeLimit:
    """Reject bodies over the limit before they are read (Content-Length) or while read (chunked)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await _error(413, f"request body exceeds {self.max_bytes} bytes")(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, run_dispatcher: bool = True) -> FastAPI:
    """Build the app. The dispatcher (the queue and the drivers) runs unless queue-only or disabled."""
    settings = settings or get_settings()
    engine = make_engine(settings.resolved_database_url, settings.db_pool_size)
    sessions = make_sessionmaker(engine)
    token = settings.api_token.get_secret_value().encode() if settings.api_token else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio

        await anyio.to_thread.run_sync(upgrade, engine)
        # In the background: readiness is not delayed by torch's import, and the first POST still finds
        # the spec model imported and the schema compiled (or waits only for what is left of it).
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
        dispatcher = None
        if run_dispatcher and settings.max_running_sweeps > 0:
            from api.dispatcher import Dispatcher

            dispatcher = Dispatcher(settings, sessions)
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                await anyio.to_thread.run_sync(dispatcher.shutdown)
            engine.dispose()

    app = FastAPI(
        title="rfsweep API",
        version="0.1.0",
        description="Submit hyperparameter sweeps of learning rules, follow them, fetch the best configurations.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.engine, app.state.sessions = settings, engine, sessions
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    # --- errors: always {"detail": ...}, never a stack trace ------------------------------------

    @app.exception_handler(HTTPError)
    async def _http_error(_request: Request, exc: HTTPError):
        return _error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; one path has several routes here.
            from starlette.routing import Match

            methods = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match is not Match.NONE and getattr(route, "methods", None):
                    methods |= set(route.methods)
            if methods:
                headers["Allow"] = ", ".join(sorted(methods))
        return _error(exc.status_code, exc.detail, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        errors = []
        for err in exc.errors():
            loc = [p if isinstance(p, (int, str)) else str(p) for p in err.get("loc", ())]
            errors.append(
                {
                    "loc": loc,
                    "msg": err.get("msg", ""),
                    "type": err.get("type", "value_error"),
                    "path": ".".join(str(p) for p in loc),
                }
            )
        return _error(422, errors)

    @app.exception_handler(InvalidSpec)
    async def _invalid_spec(_request: Request, exc: InvalidSpec):
        return _error(422, exc.errors)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.error("unhandled error: %s", exc, exc_info=exc)
        return _error(500, "internal server error")

    # --- dependencies -----------------------------------------------------------------------
    # Dependencies are async and each route makes exactly one trip to the thread pool (session, query and
    # JSON together): every extra hop costs latency under load.

    def _check(credentials: HTTPAuthorizationCredentials | None) -> None:
        if token is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, token):
            raise HTTPError(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})

    async def write_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        _check(credentials)

    async def read_access(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        _check(credentials)

    # Reads carry the bearer requirement (and document it) only when RFSWEEP_PROTECT_READS is on.
    read_guard = [Depends(read_access)] if settings.protect_reads and token is not None else []
    ui = settings.resolved_mlflow_ui_url

    def json_response(model: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            model.__pydantic_serializer__.to_json(model),
            status_code=status_code,
            headers=headers,
            media_type="application/json",
        )

    async def in_thread(fn, *args):
        import anyio

        return await anyio.to_thread.run_sync(fn, *args)

    def links(sweep_id: str, experiment_id: str | None, parent_run_id: str | None) -> Links:
        base = f"/sweeps/{sweep_id}"
        return Links(
            self=base, best=f"{base}/best", trials=f"{base}/trials", mlflow=mlflow_url(experiment_id, parent_run_id)
        )

    def mlflow_url(experiment_id: str | None, parent_run_id: str | None) -> str | None:
        if ui is None or experiment_id is None:
            return None
        if parent_run_id is None:
            return f"{ui}/#/experiments/{experiment_id}"
        return f"{ui}/#/experiments/{experiment_id}/runs/{parent_run_id}"

    def summary_fields(row: Any) -> dict[str, Any]:
        progress = row.progress or store.initial_progress(row.total_trials, row.max_epochs)
        return dict(
            id=row.id,
            name=row.name,
            status=row.status,
            cancel_requested=bool(row.cancel_requested),
            created_at=store.as_utc(row.created_at),
            updated_at=store.as_utc(row.updated_at),
            started_at=store.as_utc(row.started_at),
            finished_at=store.as_utc(row.finished_at),
            error=row.error,
            progress=Progress.model_validate(progress),
            best=BestTrial.model_validate(row.best) if row.best else None,
            mlflow=MlflowInfo(
                experiment_id=row.experiment_id,
                parent_run_id=row.parent_run_id,
                ui_url=mlflow_url(row.experiment_id, row.parent_run_id),
            ),
            links=links(row.id, row.experiment_id, row.parent_run_id),
        )

    def found(session, sweep_id: str) -> Sweep:
        sweep = store.get_sweep(session, sweep_id)
        if sweep is None:
            raise HTTPError(404, f"no sweep with id {sweep_id!r}")
        return sweep

    # --- routes -----------------------------------------------------------------------------

    spec_body = {
        "requestBody": {
            "required": True,
            "description": "A sweep spec (the same document `rfsweep sweep` reads), as JSON or YAML.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SweepSpec"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    }

    @app.post(
        "/sweeps",
        status_code=201,
        response_model=SweepCreated,
        tags=["sweeps"],
        openapi_extra=spec_body,
        responses=_responses(401, 409, 413, 415),
        dependencies=[Depends(write_access)],
        summary="Submit a sweep spec; it is queued and runs when a slot is free.",
    )
    async def submit(
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=255,
                description="Retrying with the same key returns the first sweep; "
                "the same key with another body is a 409.",
            ),
        ] = None,
    ):
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > settings.max_body_bytes:
                raise HTTPError(413, f"request body exceeds {settings.max_body_bytes} bytes")
        try:
            data = parse_body(raw, request.headers.get("content-type"))
        except UnsupportedMediaType as exc:
            raise HTTPError(415, f"unsupported Content-Type {exc}; send {JSON_TYPES[0]} or {YAML_TYPES[0]}")
        # YAML is for people: its loose scalars (1e-3 is a string to YAML 1.1) go to the spec model's
        # coercion; JSON bodies are held to the published schema's types.
        is_yaml = (request.headers.get("content-type") or "").split(";")[0].strip().lower() in YAML_TYPES
        return await in_thread(_submit, data, idempotency_key, not is_yaml)

    def _submit(data: Any, idempotency_key: str | None, strict_types: bool) -> JSONResponse:
        checked = check_spec(data, settings, strict_types=strict_types)
        with sessions() as session:
            try:
                created = store.create_sweep(
                    session,
                    spec=checked.data,
                    name=checked.name,
                    total_trials=checked.total_trials,
                    max_epochs=checked.max_epochs,
                    idempotency_key=idempotency_key,
                    request_hash=checked.request_hash,
                )
            except store.IdempotencyConflict as exc:
                raise HTTPError(409, f"Idempotency-Key already used with a different body (sweep {exc.sweep_id})")
            sweep = created.sweep
            body = SweepCreated(
                id=sweep.id, status=sweep.status, links=links(sweep.id, sweep.experiment_id, sweep.parent_run_id)
            )
        headers = {"Location": f"/sweeps/{sweep.id}"}
        if not created.created:
            headers["Idempotent-Replayed"] = "true"
        return json_response(body, 201, headers)

    @app.get(
        "/sweeps",
        response_model=SweepPage,
        tags=["sweeps"],
        dependencies=read_guard,
        responses=_responses(401),
        summary="Sweeps, newest first, keyset-paginated.",
    )
    async def list_sweeps(
        status: Annotated[
            Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
            Query(description="Only sweeps in this status."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 20,
        cursor: Annotated[
            str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the previous page.")
        ] = None,
    ):
        return await in_thread(_list, status, limit, cursor)

    def _list(status: str | None, limit: int, cursor: str | None) -> Response:
        with sessions() as session:
            rows, next_cursor = store.list_sweeps(session, status=status, limit=limit, cursor=cursor)
        return json_response(
            SweepPage(items=[SweepSummary(**summary_fields(r)) for r in rows], next_cursor=next_cursor)
        )

    @app.get(
        "/sweeps/{sweep_id}",
        response_model=SweepDetail,
        tags=["sweeps"],
        dependencies=read_guard,
        responses=_responses(401, 404),
        summary="A sweep's status, progress, best so far and MLflow links.",
    )
    async def get_sweep(sweep_id: SweepId):
        return await in_thread(_detail, sweep_id, False)

    def _detail(sweep_id: str, cancel: bool) -> Response:
        with sessions() as session:
            sweep = found(session, sweep_id)
            if cancel:
                sweep = store.request_cancel(session, sweep_id)
            return json_response(SweepDetail(**summary_fields(sweep), spec=sweep.spec, attempts=sweep.attempts))

    @app.get(
        "/sweeps/{sweep_id}/best",
        response_model=BestResponse,
        tags=["sweeps"],
        dependencies=read_guard,
        responses=_responses(401, 404, 409),
        summary="The best configuration so far (409 while no trial has reported).",
    )
    async def get_best(sweep_id: SweepId):
        return await in_thread(_best, sweep_id)

    def _best(sweep_id: str) -> Response:
        with sessions() as session:
            sweep = found(session, sweep_id)
        if not sweep.best:
            raise HTTPError(409, f"sweep {sweep_id} is {sweep.status}; no trial has reported a metric yet")
        return json_response(
            BestResponse(
                best=BestTrial.model_validate(sweep.best),
                best_per_algorithm={
                    k: BestTrial.model_validate(v) for k, v in (sweep.best_per_algorithm or {}).items() if v
                },
            )
        )

    @app.get(
        "/sweeps/{sweep_id}/trials",
        response_model=TrialsResponse,
        tags=["sweeps"],
        dependencies=read_guard,
        responses=_responses(401, 404),
        summary="Every trial: config, status, epochs, last and best metric, MLflow run.",
    )
    async def get_trials(sweep_id: SweepId):
        return await in_thread(_trials, sweep_id)

    def _trials(sweep_id: str) -> Response:
        with sessions() as session:
            sweep = found(session, sweep_id)
        trials = [Trial.model_validate(t) for t in (sweep.trials or []) if isinstance(t, dict)]
        return json_response(TrialsResponse(sweep_id=sweep.id, status=sweep.status, trials=trials))

    @app.post(
        "/sweeps/{sweep_id}/cancel",
        response_model=SweepDetail,
        tags=["sweeps"],
        dependencies=[Depends(write_access)],
        responses=_responses(401, 404),
        summary="Cancel: a queued sweep at once, a running one as soon as its driver stops its trials.",
    )
    async def cancel(sweep_id: SweepId):
        return await in_thread(_detail, sweep_id, True)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="The process answers.")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["health"],
        responses={503: {"model": Readiness}},
        summary="Database, MLflow and Ray reachable (503 naming what is not).",
    )
    def readyz():
        from api.readiness import check_all

        checks, ok = check_all(settings, engine, getattr(app.state, "dispatcher", None))
        body = Readiness(status="ready" if ok else "not ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_spec_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def _spec_schemas() -> dict[str, Any]:
    """The sweep spec's JSON Schema, its $defs hoisted into OpenAPI components (prefixed `Spec`
    so that a spec model never collides with a response model of the same name)."""
    import json

    from sweep_service.spec import spec_json_schema

    schema = spec_json_schema()
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


def _warm_up() -> None:
    """Import the spec model (and torch under rf_core) and compile the schema before the first request,
    not during it: the first POST would otherwise take seconds."""
    from api.validation import _schema_validator

    import sweep_service.budget  # noqa: F401
    import sweep_service.spec  # noqa: F401

    _schema_validator()


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def ensure_schema(settings: Settings | None = None) -> None:
    """Run the migrations once (used by `rfsweep serve` before forking workers)."""
    settings = settings or get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


__all__ = ["create_app", "ensure_schema"]
