"""`rfsweep ui`, `serve` and `quickstart` own what they start: SIGTERM or SIGINT sent to the command alone (not
to its process group, as a supervisor or `kill PID` does) stops every process under it — `mlflow ui` and its
uvicorn workers, job runner and huey consumers; the API's uvicorn, the sweep drivers in their own sessions,
the local Ray head and its raylet, GCS and workers — within a bounded time, and the same command started
again on the same port works.

Each command runs with a marker in its environment that every process under it inherits; after the command
exited, no process on the machine may still carry it (a process re-parented to init still does, so nothing
escapes the check by leaving the tree), and nothing may listen on its ports. psutil reads the tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

RFSWEEP = [sys.executable, "-m", "rfsweep_cli.main"]
MARK = "RFSWEEP_TEST_PROCESS_TREE"
TOKEN = "process-tree-" + uuid.uuid4().hex[:8]
# How long a command may take from the signal to its exit, its whole tree gone: the API's graceful stop
# (drivers, then the Ray head) gets 30 s, what is left then 5 s more after SIGTERM, then SIGKILL.
UI_STOP_WITHIN_S = 30.0
API_STOP_WITHIN_S = 60.0
# A sweep far longer than the test (200 trials of 200 epochs, one at a time): still running when the signal comes.
ENDLESS_SPEC = """name: process-tree
dataset: {name: digits}
model: {hidden: [64, 32]}
algorithm: bp
parameters: {lr: {distribution: loguniform, low: 0.01, high: 0.5}, batch_size: 32}
search: {method: random, metric: val_accuracy, num_samples: 200, max_concurrent_trials: 1, seed: 0}
scheduler: {type: fifo, max_t: 200}
resources: {cpu: 1}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def listening(port: int) -> list[int]:
    """The pids with a TCP socket listening on this port (any address)."""
    return [
        c.pid or -1
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    ]


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for p in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"  {p.pid} (parent {p.ppid()}): {' '.join(p.cmdline())[:160]}")
    return "\n".join(lines)


class Command:
    """One `rfsweep ...` in a session of its own (a signal to it reaches it alone), output to a log."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]):
        self.token = uuid.uuid4().hex
        self.log_path = cwd / f"rfsweep-{args[0]}-{self.token[:6]}.log"
        clean = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL", "RAY_ADDRESS")}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*RFSWEEP, *args],
                cwd=cwd,
                env={**clean, **env, MARK: self.token, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.seen: set[int] = set()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tree(self) -> list[psutil.Process]:
        """The command's descendants now (and remembered: `seen` is every pid ever found under it)."""
        try:
            found = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in found)
        return found

    def marked(self) -> list[psutil.Process]:
        """Every live process on this machine that carries this command's marker."""
        found = []
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                mine = p.pid != self.process.pid and p.environ().get(MARK) == self.token
                if mine and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
        return found

    def wait_for(self, what: str, predicate: Callable[[], object], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.tree()
            if self.process.poll() is not None:
                pytest.fail(f"rfsweep exited ({self.process.returncode}) before {what}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:.0f} s:\n{self.output()[-3000:]}")
            time.sleep(0.3)
        self.tree()

    def running(self, fragment: str) -> bool:
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                if fragment in " ".join(p.cmdline()):
                    return True
        return False

    def settle(self, quiet_s: float = 5.0, timeout: float = 60) -> None:
        """Wait until no new process has appeared under the command for `quiet_s` (servers start helpers late)."""
        deadline, last, since = time.monotonic() + timeout, set(), time.monotonic()
        while time.monotonic() < deadline:
            now = {p.pid for p in self.tree()}
            if now - last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.5)

    def stop(self, signum: int, within: float, ports: tuple[int, ...]) -> None:
        """Signal the command alone; it must exit within `within` seconds leaving nothing behind."""
        before = self.tree()
        assert before, f"nothing runs under rfsweep {self.process.args[3:]}:\n{self.output()[-2000:]}"
        started = time.monotonic()
        self.process.send_signal(signum)
        try:
            self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"rfsweep did not exit within {within:.0f} s of {signal.Signals(signum).name}; under it:\n"
                f"{describe(self.tree())}\n{self.output()[-2000:]}"
            )
        took = time.monotonic() - started
        left = self.marked()
        assert not left, (
            f"{len(left)} of the {len(self.seen)} processes rfsweep started outlived it "
            f"({signal.Signals(signum).name}, exit {self.process.returncode} after {took:.1f} s):\n{describe(left)}"
        )
        for port in ports:
            assert not listening(port), f"port {port} still served by {listening(port)} after rfsweep exited"
        assert self.process.returncode == 128 + signum, (self.process.returncode, self.output()[-2000:])

    def kill_leftovers(self) -> None:
        for p in [*self.marked(), *([psutil.Process(self.process.pid)] if self.process.poll() is None else [])]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@contextlib.contextmanager
def rfsweep(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[Command]:
    command = Command(args, cwd, env or {})
    try:
        yield command
    finally:
        command.kill_leftovers()  # whatever a failing test left running is not left to the next test


def test_ui_leaves_no_mlflow_process_and_frees_its_port(tmp_path):
    port = free_port()
    args = ["ui", "--port", str(port), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    for signum in (signal.SIGTERM, signal.SIGINT):  # the second start also shows the port is free again
        with rfsweep(args, tmp_path) as ui:
            ui.wait_for("MLflow UI answering", lambda: answers(f"http://127.0.0.1:{port}/health"), timeout=180)
            ui.settle()  # its job runner and huey consumers start seconds after the server answers
            assert len(ui.tree()) >= 3, describe(ui.tree())  # mlflow ui, its uvicorn, the job runner at least
            ui.stop(signum, UI_STOP_WITHIN_S, ports=(port,))


def _api_env(home: Path) -> dict[str, str]:
    return {
        "RFSWEEP_HOME": str(home),
        "RFSWEEP_API_TOKEN": TOKEN,
        "RFSWEEP_DISPATCH_INTERVAL_S": "0.3",
        "RFSWEEP_RAY_NUM_CPUS": "1",
    }


def _submit(url: str, spec: str) -> str:
    request = urllib.request.Request(
        f"{url}/sweeps",
        data=spec.encode(),
        headers={"Content-Type": "application/yaml", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["id"]


def _get(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
        return json.loads(response.read())


def test_serve_leaves_no_driver_no_ray_process_and_frees_its_port(tmp_path):
    """The API with its own local Ray head (RAY_ADDRESS unset) and a sweep running: drivers are in sessions of
    their own and Ray's processes in the head's, so a process-group kill alone would miss them. The sweep the
    stop interrupted is not failed: the next start resumes it (docs/API.md, "Graceful stop")."""
    port, home = free_port(), tmp_path / "home"
    url = f"http://127.0.0.1:{port}"
    with rfsweep(["serve", "--port", str(port)], tmp_path, _api_env(home)) as serve:
        serve.wait_for("API answering", lambda: answers(f"{url}/healthz"), timeout=180)
        sweep_id = _submit(url, ENDLESS_SPEC)
        serve.wait_for("sweep driver", lambda: serve.running("api.driver"))
        serve.wait_for("Ray raylet", lambda: serve.running("raylet"))
        serve.settle(quiet_s=3)
        serve.stop(signal.SIGTERM, API_STOP_WITHIN_S, ports=(port,))
    # Again on the same port, two uvicorn workers: the sweep the stop interrupted is resumed by a new driver.
    with rfsweep(["serve", "--port", str(port), "--workers", "2"], tmp_path, _api_env(home)) as serve:
        serve.wait_for("API answering again on the same port", lambda: answers(f"{url}/healthz"), timeout=180)
        serve.wait_for("Ray raylet", lambda: serve.running("raylet"))
        serve.wait_for("the interrupted sweep's new driver", lambda: serve.running("api.driver"))
        resumed = _get(url, f"/sweeps/{sweep_id}")
        assert (resumed["status"], resumed["attempts"]) == ("running", 2), resumed  # stopped, not failed
        serve.stop(signal.SIGINT, API_STOP_WITHIN_S, ports=(port,))


def test_quickstart_leaves_no_api_ui_driver_or_ray_process_and_frees_its_ports(tmp_path):
    api_port, ui_port, home = free_port(), free_port(), tmp_path / "home"
    spec = tmp_path / "endless.yaml"
    spec.write_text(ENDLESS_SPEC)
    args = ["quickstart", "--spec", str(spec), "--port", str(api_port), "--mlflow-port", str(ui_port)]
    env = {k: v for k, v in _api_env(home).items() if k != "RFSWEEP_API_TOKEN"}  # quickstart makes its own
    for signum in (signal.SIGTERM, signal.SIGINT):  # the second run on the same two ports
        with rfsweep(args, tmp_path, env) as quickstart:
            quickstart.wait_for("the sweep queued", lambda: " queued" in quickstart.output(), timeout=240)
            quickstart.wait_for("MLflow UI answering", lambda: answers(f"http://127.0.0.1:{ui_port}/health"))
            quickstart.wait_for("sweep driver", lambda: quickstart.running("api.driver"))
            quickstart.wait_for("Ray raylet", lambda: quickstart.running("raylet"))
            quickstart.settle(quiet_s=3)
            quickstart.stop(signum, API_STOP_WITHIN_S, ports=(api_port, ui_port))
