"""Leadership: one dispatcher per sweep store, whatever the number of uvicorn workers (a PostgreSQL advisory
lock, or a file lock beside a SQLite store)."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import TextIO

import sqlalchemy as sa

from api.settings import Settings


class LeaderLock:
    def __init__(self, settings: Settings, engine: sa.Engine):
        self.settings, self.engine = settings, engine
        self._conn: sa.Connection | None = None
        self._file: TextIO | None = None

    def try_acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(7702410002)")).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        path = Path((self.engine.url.database or "api.db") + ".dispatcher.lock")
        handle = open(path, "w")  # noqa: SIM115 (kept open: the open file holds the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return self._file is not None
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(7702410002)"))
                self._conn.commit()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
