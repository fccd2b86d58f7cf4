"""The queue: one leader process starts a driver process per sweep, at most N at once, and
reconciles sweeps whose driver died (resume, else failed with the reason).

Training never runs in the API process: each sweep runs in `python -m api.driver SWEEP_ID`, a
process of its own in a session of its own, so it outlives an API restart (even `kill -9`).
Without RAY_ADDRESS the leader starts one local Ray head (`ray start --head --block`) that every
driver joins; drivers that each called `ray.init()` locally would start competing clusters.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from api import store
from api.db import Sweep, utcnow
from api.settings import Settings
from sweep_service.status import SweepStatus

log = logging.getLogger("rfsweep.dispatcher")
CANCEL_GRACE_S = 120.0


# --- the local Ray head ------------------------------------------------------------------------


def read_head_address(settings: Settings) -> str | None:
    try:
        info = json.loads(settings.state.ray_head_file.read_text())
    except (OSError, ValueError):
        return None
    return info.get("address") if _pid_alive(info.get("pid")) else None


def _pid_alive(pid: int | None, must_contain: str | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is dead
            return False
        if must_contain is not None:
            return must_contain in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


class LocalRayHead:
    """One Ray head for all drivers of this API, with token auth (as Ray 2.60's default)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.address: str | None = None
        self.token_path = settings.state.ray_auth_token

    def env(self) -> dict[str, str]:
        return {
            "RAY_ADDRESS": self.address or "",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_path.resolve()),
        }

    def ensure(self) -> str:
        """Reuse the head a previous API process left running, else start one."""
        info = self._read()
        if info and _pid_alive(info.get("pid"), "ray") and _port_open(info["address"]):
            self.address = info["address"]
            return self.address
        if not self.token_path.exists():
            self.token_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        port = _free_port()
        address = f"127.0.0.1:{port}"
        cmd = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self._temp_dir()}",
        ]
        if self.settings.ray_num_cpus is not None:
            cmd.append(f"--num-cpus={self.settings.ray_num_cpus}")
        if self.settings.ray_num_gpus is not None:
            cmd.append(f"--num-gpus={self.settings.ray_num_gpus}")
        env = {**os.environ, **self.env()}
        env.pop("RAY_ADDRESS", None)
        logs = self.settings.state.logs
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "ray_head.log", "ab") as out:
            self.process = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"ray start --head exited with {self.process.returncode}; see {logs / 'ray_head.log'}"
                )
            if _port_open(address):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError("the local Ray head did not open its port within 90 s")
        self.address = address
        self.settings.state.ray_head_file.write_text(json.dumps({"address": address, "pid": self.process.pid}))
        log.info("started a local Ray head at %s (pid %s)", address, self.process.pid)
        return address

    def _read(self) -> dict | None:
        try:
            return json.loads(self.settings.state.ray_head_file.read_text())
        except (OSError, ValueError):
            return None

    def _temp_dir(self) -> str:
        # Short and per state folder: Ray's socket paths must stay under 107 characters, and a head
        # of its own must not overwrite /tmp/ray's "current cluster" that plain `ray.init()` reads.
        import hashlib

        digest = hashlib.sha1(str(self.settings.state.root).encode()).hexdigest()[:10]
        return f"/tmp/rfsweep-ray-{digest}"

    def stop(self) -> None:
        info = self._read()
        pid = self.process.pid if self.process is not None else (info or {}).get("pid")
        if pid and _pid_alive(pid, "ray"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _pid_alive(pid):
                if self.process is not None:
                    self.process.poll()
                time.sleep(0.2)
        with contextlib.suppress(OSError):
            self.settings.state.ray_head_file.unlink()


# --- leadership: one dispatcher per store, whatever the number of uvicorn workers -----------


class LeaderLock:
    def __init__(self, settings: Settings, engine: sa.Engine):
        self.settings, self.engine = settings, engine
        self._conn = None
        self._file = None

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
        handle = open(path, "w")
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
            for sweep_id, child in list(self.children.items()):
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
                if store.claim(session, sweep.id):
                    self._spawn(session, sweep.id, resume=False)
        for sweep_id in [k for k, c in self.children.items() if c.poll() is not None]:
            self.children.pop(sweep_id, None)

    def _driver_alive(self, sweep: Sweep) -> bool:
        child = self.children.get(sweep.id)
        if child is not None:
            return child.poll() is None
        if sweep.driver_host and sweep.driver_host != socket.gethostname():
            beat = store.as_utc(sweep.driver_heartbeat_at)
            return beat is not None and (utcnow() - beat).total_seconds() < self.settings.driver_heartbeat_timeout_s
        return _pid_alive(sweep.driver_pid, sweep.id)

    def _enforce_cancel(self, sweep: Sweep) -> None:
        if not sweep.cancel_requested:
            return
        first = self.cancel_seen.setdefault(sweep.id, time.monotonic())
        if time.monotonic() - first > CANCEL_GRACE_S and sweep.driver_pid:
            log.warning("driver of %s ignored the cancel for %.0f s; killing it", sweep.id, CANCEL_GRACE_S)
            with contextlib.suppress(OSError):
                os.kill(sweep.driver_pid, signal.SIGKILL)

    def _reconcile_dead(self, session, sweep: Sweep) -> bool:
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

    def _spawn(self, session, sweep_id: str, *, resume: bool) -> None:
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
            env["RAY_ADDRESS"] = self.settings.ray_address
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
        from sweep_service.trial_runs import end_open_runs

        end_open_runs(settings.resolved_tracking_uri, sweep.id, sweep.experiment_id, status)
    except Exception:
        log.exception("could not end the MLflow runs of sweep %s", sweep.id)


__all__ = ["Dispatcher", "LocalRayHead", "read_head_address"]
