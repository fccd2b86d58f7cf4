"""/sweeps: submit a spec, list, read one (status, progress, best, trials), cancel, pause, resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response

from api import store
from api.db import Sweep
from api.deps import Services, in_thread, json_response, require_token, services
from api.errors import HTTPError, documented
from api.openapi import SPEC_BODY
from api.schemas import (
    BestResponse,
    Links,
    MlflowInfo,
    SweepCreated,
    SweepDetail,
    SweepPage,
    SweepSummary,
    TrialsResponse,
)
from api.validation import JSON_TYPES, YAML_TYPES, UnsupportedMediaType, check_spec, parse_body
from sweep_service import mlflow_ui
from sweep_service.records import BestEntry, TrialSummary
from sweep_service.report import REPORT_FILE
from sweep_service.status import ProgressCounts, SweepStatus

CURSOR_PATTERN = r"^[0-9a-z]{1,13}$"
SweepId = Annotated[str, Path(description="The sweep's id (opaque string).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Retrying with the same key returns the first sweep; the same key with another body is a 409.",
    ),
]
Ctx = Annotated[Services, Depends(services)]


def router(read_guard: list[DependsParam]) -> APIRouter:
    """The sweep routes; `read_guard` are the dependencies of the reads (the bearer check, or none)."""
    routes = APIRouter(tags=["sweeps"])
    write_guard = [Depends(require_token)]

    @routes.post(
        "/sweeps",
        status_code=201,
        response_model=SweepCreated,
        openapi_extra=SPEC_BODY,
        responses=documented(401, 403, 409, 413, 415),
        dependencies=write_guard,
        summary="Submit a sweep spec; it is queued and runs when a slot is free.",
    )
    async def submit(request: Request, ctx: Ctx, idempotency_key: IdempotencyKey = None) -> Response:
        limit = ctx.settings.max_body_bytes
        raw = b""
        async for chunk in request.stream():  # bodies without a Content-Length are counted here
            raw += chunk
            if len(raw) > limit:
                raise HTTPError(413, f"request body exceeds {limit} bytes")
        return await in_thread(_submit, ctx, raw, request.headers.get("content-type"), idempotency_key)

    @routes.get(
        "/sweeps",
        response_model=SweepPage,
        dependencies=read_guard,
        responses=documented(401),
        summary="Sweeps, newest first, keyset-paginated.",
    )
    async def list_sweeps(
        ctx: Ctx,
        status: Annotated[SweepStatus | None, Query(description="Only sweeps in this status.")] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 20,
        cursor: Annotated[
            str | None, Query(pattern=CURSOR_PATTERN, description="next_cursor of the previous page.")
        ] = None,
    ) -> Response:
        return await in_thread(_list, ctx, status, limit, cursor)

    @routes.get(
        "/sweeps/{sweep_id}",
        response_model=SweepDetail,
        dependencies=read_guard,
        responses=documented(401, 404),
        summary="A sweep's status, progress, best so far and MLflow links.",
    )
    async def get_sweep(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_detail, ctx, sweep_id)

    @routes.get(
        "/sweeps/{sweep_id}/best",
        response_model=BestResponse,
        dependencies=read_guard,
        responses=documented(401, 404, 409),
        summary="The best configuration so far (409 while no trial has reported).",
    )
    async def get_best(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_best, ctx, sweep_id)

    @routes.get(
        "/sweeps/{sweep_id}/trials",
        response_model=TrialsResponse,
        dependencies=read_guard,
        responses=documented(401, 404),
        summary="Every trial: config, status, epochs, last and best metric, MLflow run.",
    )
    async def get_trials(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_trials, ctx, sweep_id)

    @routes.post(
        "/sweeps/{sweep_id}/cancel",
        response_model=SweepDetail,
        dependencies=write_guard,
        responses=documented(401, 403, 404),
        summary="Cancel: a queued sweep at once, a running one as soon as its driver stops its trials.",
    )
    async def cancel(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_detail, ctx, sweep_id, "cancel")

    @routes.post(
        "/sweeps/{sweep_id}/pause",
        response_model=SweepDetail,
        dependencies=write_guard,
        responses=documented(401, 404, 409),
        summary="Pause: a queued sweep at once; a running one's trials stop at their newest checkpoints, then it "
        "is `paused` (this survives a server restart).",
    )
    async def pause(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_detail, ctx, sweep_id, "pause")

    @routes.post(
        "/sweeps/{sweep_id}/resume",
        response_model=SweepDetail,
        dependencies=write_guard,
        responses=documented(401, 404, 409),
        summary="Resume a paused sweep: queued again, it continues its trials from their checkpoints in the same "
        "MLflow runs.",
    )
    async def resume(ctx: Ctx, sweep_id: SweepId) -> Response:
        return await in_thread(_detail, ctx, sweep_id, "resume")

    return routes


# ---- the work of each route, in the thread pool -----------------------------------------------------


def _submit(ctx: Services, raw: bytes, content_type: str | None, idempotency_key: str | None) -> Response:
    try:
        body = parse_body(raw, content_type)
    except UnsupportedMediaType as exc:
        raise HTTPError(415, f"unsupported Content-Type {exc}; send {JSON_TYPES[0]} or {YAML_TYPES[0]}") from None
    checked = check_spec(body, ctx.settings)
    with ctx.sessions() as session:
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
            raise HTTPError(409, f"Idempotency-Key already used with a different body (sweep {exc.sweep_id})") from None
        sweep = created.sweep
        answer = SweepCreated(
            id=sweep.id, status=sweep.status, links=_links(ctx, sweep.id, sweep.experiment_id, sweep.parent_run_id)
        )
    headers = {"Location": f"/sweeps/{sweep.id}"}
    if not created.created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(answer, 201, headers)


def _list(ctx: Services, status: str | None, limit: int, cursor: str | None) -> Response:
    with ctx.sessions() as session:
        rows, next_cursor = store.list_sweeps(session, status=status, limit=limit, cursor=cursor)
    return json_response(
        SweepPage(items=[SweepSummary(**_summary_fields(ctx, r)) for r in rows], next_cursor=next_cursor)
    )


def _detail(ctx: Services, sweep_id: str, action: str | None = None) -> Response:
    with ctx.sessions() as session:
        sweep = _found(session, sweep_id)
        if action == "cancel":
            sweep = store.request_cancel(session, sweep_id) or sweep
        elif action == "pause":
            if sweep.status not in (SweepStatus.QUEUED, SweepStatus.RUNNING, SweepStatus.PAUSED):
                raise HTTPError(409, f"sweep {sweep_id} is {sweep.status}; only a queued or running sweep pauses")
            sweep = store.request_pause(session, sweep_id) or sweep
        elif action == "resume":
            if sweep.status not in (SweepStatus.PAUSED, SweepStatus.QUEUED, SweepStatus.RUNNING):
                raise HTTPError(409, f"sweep {sweep_id} is {sweep.status}; only a paused sweep resumes")
            sweep = store.request_resume(session, sweep_id) or sweep
        return json_response(SweepDetail(**_summary_fields(ctx, sweep), spec=sweep.spec, attempts=sweep.attempts))


def _best(ctx: Services, sweep_id: str) -> Response:
    with ctx.sessions() as session:
        sweep = _found(session, sweep_id)
    if not sweep.best:
        why = (
            sweep.error if sweep.status == SweepStatus.FAILED and sweep.error else "no trial has reported a metric yet"
        )
        raise HTTPError(409, f"sweep {sweep_id} is {sweep.status}; {why}")
    best = BestEntry.from_stored(sweep.best)
    if best is None:
        raise HTTPError(409, f"sweep {sweep_id} is {sweep.status}; its stored best entry is unreadable")
    stored = (sweep.best_per_algorithm or {}).items()
    per_algorithm = {rule: entry for rule, data in stored if (entry := BestEntry.from_stored(data)) is not None}
    # best_per_algorithm is written when the sweep ends (or pauses), with each rule's model_uri once it succeeded
    without = (sweep.result or {}).get("rules_without_result") or {}
    return json_response(BestResponse(best=best, best_per_algorithm=per_algorithm, rules_without_result=without))


def _trials(ctx: Services, sweep_id: str) -> Response:
    with ctx.sessions() as session:
        sweep = _found(session, sweep_id)
    trials = [trial for t in sweep.trials or [] if (trial := TrialSummary.from_stored(t)) is not None]
    return json_response(TrialsResponse(sweep_id=sweep.id, status=sweep.status, trials=trials))


def _found(session: Any, sweep_id: str) -> Sweep:
    sweep = store.get_sweep(session, sweep_id)
    if sweep is None:
        raise HTTPError(404, f"no sweep with id {sweep_id!r}")
    return sweep


def _summary_fields(ctx: Services, row: Any) -> dict[str, Any]:
    """A sweep row (or a list page's row) as the fields of SweepSummary."""
    progress = (
        ProgressCounts.from_dict(row.progress)
        if row.progress
        else ProgressCounts.queued(row.total_trials, row.max_epochs)
    )
    return dict(
        id=row.id,
        name=row.name,
        status=row.status,
        cancel_requested=bool(row.cancel_requested),
        pause_requested=bool(row.pause_requested),
        created_at=store.as_utc(row.created_at),
        updated_at=store.as_utc(row.updated_at),
        started_at=store.as_utc(row.started_at),
        finished_at=store.as_utc(row.finished_at),
        error=row.error,
        progress=progress,
        best=BestEntry.from_stored(row.best) if row.best else None,
        mlflow=MlflowInfo(
            experiment_id=row.experiment_id,
            parent_run_id=row.parent_run_id,
            ui_url=_parent_run_url(ctx, row.experiment_id, row.parent_run_id),
        ),
        links=_links(ctx, row.id, row.experiment_id, row.parent_run_id),
    )


def _links(ctx: Services, sweep_id: str, experiment_id: str | None, parent_run_id: str | None) -> Links:
    """The API's own pages, and the MLflow UI's (the sweep's runs in its saved view; the sweep page)."""
    base = f"/sweeps/{sweep_id}"
    ui = ctx.mlflow_ui
    mlflow = report = None
    if ui is not None and experiment_id is not None:
        mlflow = mlflow_ui.experiment_url(ui, experiment_id, view=mlflow_ui.sweep_view_key(sweep_id))
        if parent_run_id is not None:
            report = mlflow_ui.artifact_url(ui, experiment_id, parent_run_id, REPORT_FILE)
    return Links(self=base, best=f"{base}/best", trials=f"{base}/trials", mlflow=mlflow, report=report)


def _parent_run_url(ctx: Services, experiment_id: str | None, parent_run_id: str | None) -> str | None:
    if ctx.mlflow_ui is None or experiment_id is None or parent_run_id is None:
        return None
    return mlflow_ui.run_url(ctx.mlflow_ui, experiment_id, parent_run_id)
