"""What routes depend on: the app's services (settings, database sessions), the bearer token check, and the
one trip to the thread pool a route makes.

Dependencies are async and each route makes exactly one trip to the thread pool (session, query and JSON
together): every extra hop costs latency under load.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.errors import HTTPError
from api.settings import Settings

T = TypeVar("T")
bearer = HTTPBearer(auto_error=False, description="RFSWEEP_API_TOKEN, when the server sets one.")


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    token: bytes | None  # RFSWEEP_API_TOKEN; None: no authentication
    mlflow_ui: str | None  # base URL of the MLflow UI for links (resolved once: it touches the file system)

    @classmethod
    def of(cls, settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> Services:
        token = settings.api_token.get_secret_value().encode() if settings.api_token else None
        return cls(settings, engine, sessions, token, settings.resolved_mlflow_ui_url)


async def services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    token = request.app.state.services.token
    if token is None:
        return
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, token):
        raise HTTPError(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})


def read_guard(settings: Settings) -> list[DependsParam]:
    """Reads carry the bearer requirement (and document it) only when RFSWEEP_PROTECT_READS is on."""
    return [Depends(require_token)] if settings.protect_reads and settings.api_token else []


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


def json_response(model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = model.__pydantic_serializer__.to_json(model)
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")
