"""The HTTP API: `create_app` assembles the settings, the database, the middleware, the error handlers, the
routes (`api/routes/`) and the OpenAPI document; each of those lives in a module of its own."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import errors, openapi
from api.db import make_engine, make_sessionmaker, upgrade
from api.deps import Services, read_guard
from api.middleware import AnswerServerErrors, BodySizeLimit, CrossOriginWrites
from api.routes import health, sweeps
from api.settings import Settings, get_settings


def _installed_version() -> str:
    """pyproject's version (its one home), as installed; "unknown" when run from a source tree never installed."""
    try:
        return importlib.metadata.version("rfsweep")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def create_app(settings: Settings | None = None, *, run_dispatcher: bool = True) -> FastAPI:
    """Build the app. The dispatcher (the queue and the drivers) runs unless queue-only or disabled."""
    settings = settings or get_settings()
    engine = make_engine(settings.resolved_database_url, settings.db_pool_size)
    context = Services.of(settings, engine, make_sessionmaker(engine))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(upgrade, engine)
        # In the background: readiness is not delayed by torch's import, and the first POST still finds
        # the spec model imported and the schema compiled (or waits only for what is left of it).
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
        dispatcher = None
        if run_dispatcher and settings.max_running_sweeps > 0:
            from api.dispatcher import Dispatcher

            dispatcher = Dispatcher(settings, context.sessions)
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                await anyio.to_thread.run_sync(dispatcher.shutdown)
            engine.dispose()

    # /docs and /redoc load Swagger UI, ReDoc and the favicon from the fastapi-offline package (under
    # /static-offline-docs), not from a CDN: the docs work where the server has no internet, and so do clients.
    app = FastAPIOffline(
        title="rfsweep API",
        version=_installed_version(),
        description="Submit hyperparameter sweeps of learning rules, follow them, fetch the best configurations.",
        lifespan=lifespan,
    )
    app.state.services = context
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if context.token is None:
        app.add_middleware(CrossOriginWrites, allowed_origins=settings.allowed_origins)
    app.add_middleware(AnswerServerErrors)  # added last: the outermost, so it answers for the others too
    errors.install_handlers(app)
    app.include_router(sweeps.router(read_guard(settings)))
    app.include_router(health.router)
    openapi.install(app, settings.cost_limits)
    return app


def _warm_up() -> None:
    """Import the spec model (and torch under rf_core) and compile the schema before the first request,
    not during it: the first POST would otherwise take seconds."""
    from api.openapi import import_spec_model
    from api.validation import schema_validator

    import_spec_model()
    schema_validator()


def ensure_schema(settings: Settings | None = None) -> None:
    """Run the migrations once (used by `rfsweep serve` before forking workers)."""
    settings = settings or get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


__all__ = ["create_app", "ensure_schema"]
