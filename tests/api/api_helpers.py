"""Helpers of the API tests: a real uvicorn server on a loopback port, waiting, reading MLflow."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_URL = os.environ.get("RFSWEEP_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "test-token-" + secrets.token_hex(8)

TINY_SPEC: dict[str, Any] = {
    "name": "api-tiny",
    "dataset": {"name": "digits", "train_subset": 300},
    "model": {"hidden": [16]},
    "algorithm": "bp",
    "parameters": {"lr": {"distribution": "loguniform", "low": 0.01, "high": 0.5}, "batch_size": 32},
    "search": {"method": "random", "metric": "val_accuracy", "num_samples": 3, "max_concurrent_trials": 2, "seed": 0},
    "scheduler": {"type": "fifo", "max_t": 3},
    "resources": {"cpu": 1},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiServer:
    """`uvicorn --factory api.app:create_app` in a process of its own, on a free loopback port."""

    def __init__(self, home: Path, env: dict[str, str], *, workers: int = 1):
        self.home, self.workers = home, workers
        self.env = {
            **os.environ,
            "RFSWEEP_HOME": str(home),
            "RFSWEEP_API_TOKEN": TOKEN,
            "RFSWEEP_DISPATCH_INTERVAL_S": "0.3",
            **env,
        }
        for inherited in ("DATABASE_URL", "MLFLOW_TRACKING_URI", "RAY_ADDRESS", "RFSWEEP_PROTECT_READS"):
            if inherited not in env:  # each server gets exactly the stores the test names
                self.env.pop(inherited, None)
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log_path = home / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> ApiServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--workers",
            str(self.workers),
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the server writes it while it runs)
        self.process = subprocess.Popen(
            cmd, cwd=self.home, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API did not answer in {timeout} s:\n{self.log_tail()}")

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def kill(self) -> None:
        """SIGKILL, as a crash would; drivers (own sessions) and the Ray head survive it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def wait_for(predicate, timeout: float, interval: float = 0.3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def mlflow_runs(tracking_uri: str, sweep_id: str) -> dict[str, list]:
    """The sweep's MLflow runs: {"sweep": [parent], "trial": [children]}."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiment_ids, filter_string=f"tags.`rfsweep.sweep_id` = '{sweep_id}'", max_results=1000)
    out: dict[str, list] = {"sweep": [], "trial": []}
    for run in runs:
        out.setdefault(run.data.tags.get("rfsweep.role", "?"), []).append(run)
    return out
