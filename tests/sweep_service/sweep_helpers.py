"""Helpers for the sweep tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def runs_of(client, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=1000)


def children_and_parent(client, experiment_id: str):
    runs = runs_of(client, experiment_id)
    parents = [r for r in runs if r.data.tags.get("rfsweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("rfsweep.role") == "trial"]
    return parents, children


def steps_of(client, run_id: str, key: str) -> list[int]:
    return sorted(int(m.step) for m in client.get_metric_history(run_id, key))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` (SQLite store, artifacts served over HTTP) on a free loopback port; its URL."""
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (the server writes it while it runs)
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # uvicorn's graceful shutdown can take long; nothing is left to save
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def stand_in_tune_session(monkeypatch, checkpoint_dir: Path | None = None) -> list[dict]:
    """Run a trainable in this process: Tune's session calls stood in for (the trial `t0` on node `n0`, restored
    from `checkpoint_dir` if given); returns the list its reports land in."""
    import ray
    from ray import tune

    reports: list[dict] = []
    checkpoint = None if checkpoint_dir is None else tune.Checkpoint.from_directory(str(checkpoint_dir))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: checkpoint)
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune, "get_context", lambda: type("Context", (), {"get_trial_id": lambda self: "t0"})())
    monkeypatch.setattr(ray, "get_runtime_context", lambda: type("R", (), {"get_node_id": lambda self: "n0"})())
    return reports


def in_process_trial_settings(spec, *, checkpoint_every: int, gpus: float = 0):
    """The TrialSettings the runner would give `spec`'s trials (one CPU, no rungs)."""
    from sweep_service.space import build_spaces
    from sweep_service.trainable import TrialSettings

    return TrialSettings(
        spaces=build_spaces(spec),
        metric=spec.metric,
        mode=spec.mode,
        max_t=spec.max_t,
        checkpoint_every=checkpoint_every,
        checkpoint_epochs=frozenset(),
        cpus=1,
        gpus=gpus,
    )
