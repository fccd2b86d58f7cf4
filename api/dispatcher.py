"""The queue: one leader process (`leader.py`) starts a driver process per sweep, at most N at once, and
reconciles sweeps whose driver died (resume, else failed with the reason).

Training never runs in the API process: each sweep runs in `python -m api.driver SWEEP_ID`, a
process of its own in a session of its own, so it outlives an API restart (even `kill -9`).
Without RAY_ADDRESS the leader starts one local Ray head (`local_ray.py`) that every driver joins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from api import store
from api.db import Sweep, utcnow
from api.leader import LeaderLock
from api.local_ray import LocalRayHead, pid_alive
from api.settings import Settings
from sweep_service.status import SweepStatus

log = logging.getLogger("rfsweep.dispatcher")
CANCEL_GRACE_S = 120.0


# --- the dispatcher ----------------------------------------------------------------------------


class Dispatcher(threading.Thread):
    def __init__(self, settings: Settings, sessions: sessionmaker):
        super().__init__(name="rfsweep-dispatcher", daemon=True)
        self.settings, self.sessions = settings, sessions
        self.engine = sessions.kw["bind"]
        self.lock = LeaderLock(settings, self.engine)
        self.stopping = threading.Event()
        self.children: dict[str, subprocess.Popen] = {}
        self.cancel_seen: dict[str, float] = {}
        self.head = LocalRayHead(settings) if not settings.ray_address else None
        self.is_leader = False
        self.last_error: str | None = None

    # lifecycle

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self.is_leader:
                    self.is_leader = self.lock.try_acquire()
                    if self.is_leader:
                        log.info("this process leads the dispatch (pid %s)", os.getpid())
                        if self.head is not None:
                            self.head.ensure()
                elif not self.lock.still_held():
                    self.is_leader = False
                    continue
                if self.is_leader:
                    self.tick()
                self.last_error = None
            except Exception as exc:  # keep dispatching; the store or Ray may come back
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("dispatcher error")
                self.stopping.wait(2.0)
            self.stopping.wait(self.settings.dispatch_interval_s if self.is_leader else 2.0)

    def shutdown(self) -> None:
        """On a graceful stop: drivers on an external cluster keep running (the next start follows them);
        with our own Ray head both go, and the next start resumes the sweeps from Tune's storage."""
        self.stopping.set()
        self.join(timeout=10)
        if self.is_leader and self.head is not None:
            for child in list(self.children.values()):
                if child.poll() is None:
                    with contextlib.suppress(OSError):
                        os.killpg(child.pid, signal.SIGTERM)
            for child in self.children.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=20)
            self.head.stop()
        self.lock.release()

    # one round

    def tick(self) -> None:
        with self.sessions() as session:
            running = store.running_sweeps(session)
            alive = 0
            for sweep in running:
                if self._driver_alive(sweep):
                    alive += 1
                    self._enforce_cancel(sweep)
                    continue
                if self._reconcile_dead(session, sweep):
                    alive += 1
            free = self.settings.max_running_sweeps - alive
            waiting = store.next_queued(session, free)
            if waiting and self.head is not None:
                self.head.ensure()  # before claiming: a sweep is never marked running without a cluster
            for sweep in waiting:
                resume = sweep.attempts > 0  # queued again after a pause: continue from Tune's storage
                if store.claim(session, sweep.id):
                    self._spawn(session, sweep.id, resume=resume)
        for sweep_id in [k for k, c in self.children.items() if c.poll() is not None]:
            self.children.pop(sweep_id, None)

    def _driver_alive(self, sweep: Sweep) -> bool:
        child = self.children.get(sweep.id)
        if child is not None:
            return child.poll() is None
        if sweep.driver_host and sweep.driver_host != socket.gethostname():
            beat = store.as_utc(sweep.driver_heartbeat_at)
            return beat is not None and (utcnow() - beat).total_seconds() < self.settings.driver_heartbeat_timeout_s
        return pid_alive(sweep.driver_pid, sweep.id)

    def _enforce_cancel(self, sweep: Sweep) -> None:
        if not sweep.cancel_requested:
            return
        first = self.cancel_seen.setdefault(sweep.id, time.monotonic())
        if time.monotonic() - first > CANCEL_GRACE_S and sweep.driver_pid:
            log.warning("driver of %s ignored the cancel for %.0f s; killing it", sweep.id, CANCEL_GRACE_S)
            with contextlib.suppress(OSError):
                os.kill(sweep.driver_pid, signal.SIGKILL)

    def _reconcile_dead(self, session: Session, sweep: Sweep) -> bool:
        """A running sweep without a live driver: resume it, or end it. True if a driver was started."""
        child = self.children.pop(sweep.id, None)
        reason = f"exit status {child.returncode}" if child is not None else "the driver process is gone"
        session.refresh(sweep)
        if sweep.status != SweepStatus.RUNNING:  # it wrote its own ending just before exiting
            return False
        if sweep.cancel_requested:
            store.finish(session, sweep.id, SweepStatus.CANCELLED)
            _end_mlflow_runs(self.settings, sweep, SweepStatus.CANCELLED)
            self.cancel_seen.pop(sweep.id, None)
            return False
        if sweep.pause_requested:  # it died pausing: paused it is; a resume restores it from Tune's storage
            store.mark_paused(session, sweep.id)
            return False
        if sweep.attempts >= self.settings.max_driver_attempts:
            store.finish(
                session,
                sweep.id,
                SweepStatus.FAILED,
                error=f"the driver died {sweep.attempts} times (last: {reason}); giving up",
            )
            _end_mlflow_runs(self.settings, sweep, SweepStatus.FAILED)
            return False
        log.warning("driver of sweep %s died (%s); resuming it (attempt %d)", sweep.id, reason, sweep.attempts + 1)
        self._spawn(session, sweep.id, resume=True)
        return True

    def _spawn(self, session: Session, sweep_id: str, *, resume: bool) -> None:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.settings.resolved_database_url,
                "MLFLOW_TRACKING_URI": self.settings.resolved_tracking_uri,
                "RFSWEEP_STORAGE_PATH": self.settings.resolved_storage_path,
                "RFSWEEP_HOME": str(self.settings.state.root),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.head is not None:
            self.head.ensure()  # reuses the running head; restarts it if it died
            env.update(self.head.env())
        else:
            env["RAY_ADDRESS"] = self.settings.ray_address or ""
        logs = self.settings.state.logs
        logs.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "api.driver", sweep_id]
        if resume:
            cmd.append("--resume")
        with open(logs / f"driver-{sweep_id}.log", "ab") as out:
            child = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.children[sweep_id] = child
        store.record_driver(session, sweep_id, child.pid, new_attempt=resume)
        log.info("sweep %s: driver pid %s%s", sweep_id, child.pid, " (resume)" if resume else "")


def _end_mlflow_runs(settings: Settings, sweep: Sweep, status: SweepStatus) -> None:
    """No orphan RUNNING runs: end what a dead driver left open."""
    try:
        from sweep_service.parent_run import end_open_runs

        end_open_runs(settings.resolved_tracking_uri, sweep.id, sweep.experiment_id, status)
    except Exception:
        log.exception("could not end the MLflow runs of sweep %s", sweep.id)


__all__ = ["Dispatcher"]
