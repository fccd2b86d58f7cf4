"""Reads and writes of the sweep store, shared by the HTTP handlers, the dispatcher and the drivers."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.db import LIST_COLUMNS, Sweep, utcnow
from sweep_service.records import TrialSummary
from sweep_service.status import TERMINAL_SWEEP_STATUSES, ProgressCounts, SweepStatus

QUEUED, RUNNING, CANCELLED = SweepStatus.QUEUED.value, SweepStatus.RUNNING.value, SweepStatus.CANCELLED.value
PAUSED = SweepStatus.PAUSED.value

CURSOR_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
INT64_MAX = 2**63 - 1


def encode_cursor(seq: int) -> str:
    """A page cursor: the last row's sequence number in base 36 (opaque to clients)."""
    digits = []
    while True:
        seq, rem = divmod(seq, 36)
        digits.append(CURSOR_ALPHABET[rem])
        if seq == 0:
            return "".join(reversed(digits))


def decode_cursor(cursor: str) -> int:
    # Every string of the documented pattern is a valid cursor; clamp so PostgreSQL's bigint never overflows.
    return min(int(cursor, 36), INT64_MAX)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body."""

    def __init__(self, sweep_id: str):
        super().__init__(sweep_id)
        self.sweep_id = sweep_id


@dataclass
class Created:
    sweep: Sweep
    created: bool


def create_sweep(
    session: Session,
    *,
    spec: dict[str, Any],
    name: str | None,
    total_trials: int | None,
    max_epochs: int | None,
    idempotency_key: str | None,
    request_hash: str,
) -> Created:
    """Insert a queued sweep, or return the sweep an identical earlier request with the same key made."""
    if idempotency_key is not None:
        existing = _by_key(session, idempotency_key)
        if existing is not None:
            return _replay(existing, request_hash)
    now = utcnow()
    sweep = Sweep(
        id=str(uuid.uuid4()),
        name=name,
        status=QUEUED,
        spec=spec,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        total_trials=total_trials,
        max_epochs=max_epochs,
        created_at=now,
        updated_at=now,
        cancel_requested=False,
        pause_requested=False,
        attempts=0,
        progress=ProgressCounts.queued(total_trials, max_epochs).to_dict(),
    )
    session.add(sweep)
    try:
        session.commit()
    except IntegrityError:
        # Two requests with the same key raced; the other one won.
        session.rollback()
        existing = _by_key(session, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(existing, request_hash)
    return Created(sweep, True)


def _by_key(session: Session, key: str) -> Sweep | None:
    return session.scalar(sa.select(Sweep).where(Sweep.idempotency_key == key))


def _replay(existing: Sweep, request_hash: str) -> Created:
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(existing.id)
    return Created(existing, False)


def get_sweep(session: Session, sweep_id: str) -> Sweep | None:
    if len(sweep_id) > 36:
        return None
    return session.scalar(sa.select(Sweep).where(Sweep.id == sweep_id))


def list_sweeps(
    session: Session, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[sa.Row], str | None]:
    """Newest first by keyset on `seq`: one index range scan whatever the page depth."""
    query = sa.select(*LIST_COLUMNS)
    if status is not None:
        query = query.where(Sweep.status == status)
    if cursor is not None:
        query = query.where(Sweep.seq < decode_cursor(cursor))
    rows = list(session.execute(query.order_by(Sweep.seq.desc()).limit(limit + 1)).all())
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


def request_cancel(session: Session, sweep_id: str) -> Sweep | None:
    """Queued and paused sweeps are cancelled at once (every trial with them); running ones are flagged for their
    driver to stop."""
    now = utcnow()
    sweep = get_sweep(session, sweep_id)
    if sweep is not None and sweep.status in (QUEUED, PAUSED):
        session.execute(
            sa.update(Sweep)
            .where(Sweep.id == sweep_id, Sweep.status == sweep.status)
            .values(
                status=CANCELLED,
                cancel_requested=True,
                pause_requested=False,
                finished_at=now,
                updated_at=now,
                **_closed(sweep, SweepStatus.CANCELLED),
            )
        )
    session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == RUNNING, Sweep.cancel_requested.is_(False))
        .values(cancel_requested=True, updated_at=now)
    )
    session.commit()
    return get_sweep(session, sweep_id)


def request_pause(session: Session, sweep_id: str) -> Sweep | None:
    """A queued sweep is paused at once; a running one is flagged for its driver, which stops its trials at
    their checkpoints and marks it paused. Terminal and paused sweeps are left as they are."""
    now = utcnow()
    session.execute(
        sa.update(Sweep).where(Sweep.id == sweep_id, Sweep.status == QUEUED).values(status=PAUSED, updated_at=now)
    )
    session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == RUNNING, Sweep.cancel_requested.is_(False))
        .values(pause_requested=True, updated_at=now)
    )
    session.commit()
    return get_sweep(session, sweep_id)


def request_resume(session: Session, sweep_id: str) -> Sweep | None:
    """A paused sweep is queued again (its driver resumes it from Tune's storage: the same trials, from their
    checkpoints, with the same MLflow runs); a pause not yet carried out is withdrawn."""
    now = utcnow()
    session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == PAUSED)
        .values(status=QUEUED, pause_requested=False, updated_at=now)
    )
    session.execute(sa.update(Sweep).where(Sweep.id == sweep_id, Sweep.status == RUNNING).values(pause_requested=False))
    session.commit()
    return get_sweep(session, sweep_id)


def mark_paused(session: Session, sweep_id: str, **values: Any) -> bool:
    """running → paused (its driver stopped the trials, or died while pausing)."""
    now = utcnow()
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # an UPDATE gives a CursorResult
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == RUNNING)
        .values(status=PAUSED, pause_requested=False, driver_pid=None, updated_at=now, **values)
    )
    session.commit()
    return result.rowcount == 1


# --- dispatcher -------------------------------------------------------------------------------


def running_sweeps(session: Session) -> list[Sweep]:
    return list(session.scalars(sa.select(Sweep).where(Sweep.status == RUNNING).order_by(Sweep.seq)))


def next_queued(session: Session, count: int) -> list[Sweep]:
    if count <= 0:
        return []
    query = sa.select(Sweep).where(Sweep.status == QUEUED).order_by(Sweep.seq).limit(count)
    return list(session.scalars(query))


def claim(session: Session, sweep_id: str) -> bool:
    """queued → running, atomically (a cancel may have won the race)."""
    now = utcnow()
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # an UPDATE gives a CursorResult
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == QUEUED)
        .values(
            status=RUNNING,
            started_at=now,
            updated_at=now,
            attempts=Sweep.attempts + 1,
            driver_pid=None,
            driver_host=None,
            driver_heartbeat_at=None,
        )
    )
    session.commit()
    return result.rowcount == 1


def record_driver(session: Session, sweep_id: str, pid: int, *, new_attempt: bool = False) -> None:
    now = utcnow()
    values: dict[str, Any] = dict(
        driver_pid=pid, driver_host=socket.gethostname(), driver_heartbeat_at=now, updated_at=now
    )
    if new_attempt:
        values["attempts"] = Sweep.attempts + 1
    session.execute(sa.update(Sweep).where(Sweep.id == sweep_id).values(**values))
    session.commit()


def finish(session: Session, sweep_id: str, status: SweepStatus, *, error: str | None = None, **values: Any) -> bool:
    """Move a running sweep to a terminal status (no-op when it already is terminal). Without the final
    `progress` and `trials` (a driver that died, a cancel), its last ones are closed: no trial stays pending or
    running in a sweep that has ended."""
    assert status.terminal
    now = utcnow()
    if "progress" not in values or "trials" not in values:
        sweep = get_sweep(session, sweep_id)
        if sweep is not None:
            values = {**_closed(sweep, status), **values}
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]  # an UPDATE gives a CursorResult
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status.not_in(TERMINAL_SWEEP_STATUSES))
        .values(status=status.value, error=error, finished_at=now, updated_at=now, **values)
    )
    session.commit()
    return result.rowcount == 1


def _closed(sweep: Sweep, status: SweepStatus) -> dict[str, Any]:
    """The sweep's progress and trials as they stand once it ends with `status` (`TrialStatus.closed_by`)."""
    progress = (
        ProgressCounts.from_dict(sweep.progress)
        if sweep.progress
        else ProgressCounts.queued(sweep.total_trials, sweep.max_epochs)
    )
    trials = []
    for stored in sweep.trials or []:
        try:
            trial = TrialSummary.model_validate(stored)
        except ValidationError:  # not a row any rfsweep wrote: kept in the store as it is (GET /trials skips it)
            trials.append(stored)
            continue
        trials.append(trial.model_copy(update={"status": trial.status.closed_by(status)}).to_json())
    return {"progress": progress.closed(status).to_dict(), "trials": trials}


# --- driver -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """What the driver is asked to do."""

    cancel: bool
    pause: bool


def heartbeat(session: Session, sweep_id: str) -> Requests:
    """Touch the driver's heartbeat; returns whether a cancel or a pause was requested."""
    now = utcnow()
    session.execute(sa.update(Sweep).where(Sweep.id == sweep_id).values(driver_heartbeat_at=now))
    session.commit()
    row = session.execute(
        sa.select(Sweep.cancel_requested, Sweep.pause_requested).where(Sweep.id == sweep_id)
    ).one_or_none()
    return Requests(bool(row and row[0]), bool(row and row[1]))


def write_progress(session: Session, sweep_id: str, values: dict[str, Any]) -> None:
    now = utcnow()
    session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == RUNNING)
        .values(updated_at=now, driver_heartbeat_at=now, **values)
    )
    session.commit()


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
