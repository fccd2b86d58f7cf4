"""/healthz (the process answers) and /readyz (the database, MLflow and Ray are reachable)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.deps import Services, services
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process answers.")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Database, MLflow and Ray reachable (503 naming what is not).",
)
def readyz(ctx: Annotated[Services, Depends(services)]) -> JSONResponse:
    from api.readiness import check_all

    checks, ok = check_all(ctx.settings, ctx.engine)
    body = Readiness(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
