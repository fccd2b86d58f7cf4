"""One sweep's driver process: `python -m api.driver SWEEP_ID [--resume]`.

Runs the sweep with sweep_service's runner on the Ray cluster in RAY_ADDRESS and writes its
progress, result or failure into the sweep store. A cancel flagged in the store stops it; a pause flagged
there stops its trials at their newest checkpoints and marks the sweep paused (`--resume` continues it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from api import store
from api.db import make_engine, make_sessionmaker
from api.settings import Settings
from sweep_service.numbers import json_safe
from sweep_service.status import SweepStatus

if TYPE_CHECKING:
    from sweep_service.progress import SweepProgress

log = logging.getLogger("rfsweep.driver")
HEARTBEAT_S = 1.0
PROGRESS_MIN_INTERVAL_S = 0.5


def progress_values(progress: SweepProgress) -> dict[str, Any]:
    """What the store keeps of a running sweep's progress (its columns)."""
    trials = json_safe([t.to_json() for t in progress.trials])
    values: dict[str, Any] = {"progress": progress.counts.to_dict(), "trials": trials}
    if progress.best:
        values["best"] = json_safe(progress.best.to_json())
    if progress.experiment_id:
        values["experiment_id"] = str(progress.experiment_id)
    if progress.parent_run_id:
        values["parent_run_id"] = str(progress.parent_run_id)
    return values


class StoreLink:
    """The driver's line to the store: heartbeat, cancel flag, throttled progress."""

    def __init__(self, sessions: sessionmaker[Session], sweep_id: str):
        self.sessions, self.sweep_id = sessions, sweep_id
        self.cancel = threading.Event()
        self.pause = threading.Event()
        self._pending: dict[str, Any] | None = None
        self._last_write = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def should_pause(self) -> bool:
        return self.pause.is_set()

    def on_progress(self, progress: Any) -> None:
        values = progress_values(progress)
        with self._lock:
            self._pending = values
        if time.monotonic() - self._last_write >= PROGRESS_MIN_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            values, self._pending = self._pending, None
            if values is None:
                return
            self._last_write = time.monotonic()
            try:
                with self.sessions() as session:
                    store.write_progress(session, self.sweep_id, values)
            except Exception:
                log.exception("could not write progress")
                if self._pending is None:
                    self._pending = values

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self.sessions() as session:
                    requests = store.heartbeat(session, self.sweep_id)
                if requests.cancel:
                    self.cancel.set()
                if requests.pause:
                    self.pause.set()
                else:
                    self.pause.clear()  # a resume before the pause was carried out withdraws it
                self.flush()
            except Exception:
                log.exception("heartbeat failed")


def _stopped_by_signal(exc: BaseException) -> int | None:
    """The signal that stopped the driver from outside (SIGTERM: the API's graceful stop, `rfsweep serve` or
    `quickstart` stopping; SIGINT), or None. Ray's driver handler and ours both turn SIGTERM into
    `sys.exit(SIGTERM)`."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exc, SystemExit) and exc.code in (signal.SIGTERM, signal.SIGINT):
        return int(exc.code)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.driver", description=__doc__)
    parser.add_argument("sweep_id")
    parser.add_argument("--resume", action="store_true", help="restore the sweep from Tune's storage")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    settings = Settings()
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        sweep = store.get_sweep(session, args.sweep_id)
        if sweep is None or sweep.status != SweepStatus.RUNNING:
            log.info("sweep %s is %s; nothing to run", args.sweep_id, sweep.status if sweep else "unknown")
            return 0
        store.record_driver(session, sweep.id, os.getpid())
        spec_data, cancel_requested, pause_requested = sweep.spec, sweep.cancel_requested, sweep.pause_requested

    # Until ray.init sets its own (the same): SIGTERM ends the driver through SystemExit, never mid-write.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    link = StoreLink(sessions, args.sweep_id)
    if cancel_requested:
        link.cancel.set()
    if pause_requested:
        link.pause.set()
    link.start()
    try:
        from sweep_service.runner import run_sweep
        from sweep_service.spec import parse_spec
        from sweep_service.tracking import ExperimentPolicy

        spec = parse_spec(spec_data)
        log.info("running sweep %s (resume=%s) on %s", args.sweep_id, args.resume, os.environ.get("RAY_ADDRESS"))
        result = run_sweep(
            spec,
            sweep_id=args.sweep_id,
            tracking_uri=settings.resolved_tracking_uri,
            storage_path=settings.resolved_storage_path,
            ray_address=settings.ray_address,
            on_progress=link.on_progress,
            resume=args.resume,
            should_stop=link.should_stop,
            should_pause=link.should_pause,
            mlflow_ui_url=settings.resolved_mlflow_ui_url,
            experiments=ExperimentPolicy(settings.experiment_prefix, settings.adopt_foreign_experiments),
        )
    except BaseException as exc:
        link.close()
        stopped_by = _stopped_by_signal(exc)
        if stopped_by is not None and not link.should_stop():
            # Stopped from outside, not by the sweep: it stays `running` in the store, so the next API start
            # finds its driver gone and resumes it from Tune's storage in the same MLflow runs (docs/API.md).
            log.warning("sweep %s: driver stopped by %s; the next start resumes it", args.sweep_id, stopped_by)
            return 128 + stopped_by
        reason = f"{type(exc).__name__}: {exc}".strip()
        traceback.print_exc()
        with sessions() as session:
            if link.should_stop():
                store.finish(session, args.sweep_id, SweepStatus.CANCELLED)
            else:
                store.finish(session, args.sweep_id, SweepStatus.FAILED, error=reason[:2000])
        return 1
    link.close()
    payload = json_safe(result.to_json())
    # Stored once: the trials and best entries in their own columns, the rest of the result beside them.
    final: dict[str, Any] = {
        "best_per_algorithm": payload.pop("best_per_algorithm"),
        "trials": payload.pop("trials"),
        "progress": result.progress.to_dict(),
        "experiment_id": str(result.experiment_id),
        "parent_run_id": str(result.parent_run_id),
    }
    best = payload.pop("best")
    if best:
        final["best"] = best
    final["result"] = payload
    with sessions() as session:
        if result.status is SweepStatus.PAUSED:
            final.pop("result")
            store.mark_paused(session, args.sweep_id, **final)
        else:  # failed: no trial produced a usable result (result.error says so, with the counts)
            store.finish(session, args.sweep_id, result.status, error=result.error, **final)
    log.info("sweep %s %s%s", args.sweep_id, result.status, f": {result.error}" if result.error else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
