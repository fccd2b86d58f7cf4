"""The sweep store: SQLAlchemy 2 models, engine and the Alembic upgrade run at start-up."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from sweep_service.status import SweepStatus

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Sweep(Base):
    """One submitted sweep. `seq` orders sweeps (newest first) and is the keyset cursor; `id` is public."""

    __tablename__ = "sweeps"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, nullable=False)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default=SweepStatus.QUEUED.value)
    spec: Mapped[dict] = mapped_column(sa.JSON, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    total_trials: Mapped[int | None] = mapped_column(sa.Integer)
    max_epochs: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(sa.Text)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    pause_requested: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    progress: Mapped[dict | None] = mapped_column(sa.JSON)
    best: Mapped[dict | None] = mapped_column(sa.JSON)
    best_per_algorithm: Mapped[dict | None] = mapped_column(sa.JSON)
    trials: Mapped[list | None] = mapped_column(sa.JSON)
    result: Mapped[dict | None] = mapped_column(sa.JSON)
    experiment_id: Mapped[str | None] = mapped_column(sa.String(64))
    parent_run_id: Mapped[str | None] = mapped_column(sa.String(64))
    driver_pid: Mapped[int | None] = mapped_column(sa.Integer)
    driver_host: Mapped[str | None] = mapped_column(sa.String(255))
    driver_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)

    __table_args__ = (sa.Index("ix_sweeps_status_seq", "status", "seq"),)


# Columns a list page needs; the big JSON documents (spec, trials, result) stay on disk.
LIST_COLUMNS = (
    Sweep.seq,
    Sweep.id,
    Sweep.name,
    Sweep.status,
    Sweep.created_at,
    Sweep.updated_at,
    Sweep.started_at,
    Sweep.finished_at,
    Sweep.error,
    Sweep.progress,
    Sweep.best,
    Sweep.experiment_id,
    Sweep.parent_run_id,
    Sweep.total_trials,
    Sweep.max_epochs,
    Sweep.cancel_requested,
    Sweep.pause_requested,
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a driver writes progress; busy_timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pool_pre_ping: it costs a round trip per request; after a database restart SQLAlchemy drops the
    # whole pool on the first disconnect error, so at most one request per process sees it.
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between uvicorn workers and drivers starting together."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(7702410001)"))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(7702410001)"))
                conn.commit()
        return
    path = engine.url.database
    lock_path = Path(path + ".migrate.lock") if path and path != ":memory:" else None
    if lock_path is None:
        yield
        return
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with _migration_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
