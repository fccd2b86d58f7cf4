"""`rfsweep quickstart`: the whole embedded stack on localhost, one command."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer


def _free_port(preferred: int | None = None) -> int:
    if preferred:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_spec() -> Path:
    for candidate in (
        Path("examples/digits_quick.yaml"),
        Path(__file__).resolve().parents[1] / "examples" / "digits_quick.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise typer.BadParameter("examples/digits_quick.yaml not found; pass --spec")


def _stop(process: subprocess.Popen | None, name: str, timeout: float = 60) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        typer.echo(f"{name} did not stop in {timeout:.0f} s; killing it", err=True)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_quickstart(*, spec: Path | None, port: int, mlflow_port: int, keep_running: bool, start_ui: bool) -> int:
    from api.client import ApiError, RfsweepClient
    from api.settings import Settings
    from rfsweep_cli.display import follow, print_sweep_best
    from sweep_service.status import SweepStatus

    spec = spec or _default_spec()
    settings = Settings()
    home = settings.state.root
    logs = settings.state.logs
    logs.mkdir(parents=True, exist_ok=True)
    tracking_uri = settings.resolved_tracking_uri
    api_port = port or _free_port(8000)
    token = os.environ.get("RFSWEEP_API_TOKEN") or secrets.token_urlsafe(24)
    ui_port = mlflow_port or _free_port(5000)
    ui_url = f"http://127.0.0.1:{ui_port}"
    env = {
        **os.environ,
        "RFSWEEP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "RFSWEEP_API_TOKEN": token,
        "RFSWEEP_MLFLOW_UI_URL": ui_url,
        "RFSWEEP_MAX_RUNNING_SWEEPS": str(max(1, settings.max_running_sweeps)),
    }
    url = f"http://127.0.0.1:{api_port}"
    typer.echo(f"state: {home}\nstarting the API on {url} (local Ray head, SQLite stores) ...")
    with open(logs / "quickstart_api.log", "ab") as out:
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    ui = None
    ui_cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--port",
        str(ui_port),
        "--host",
        "127.0.0.1",
    ]
    try:
        client = RfsweepClient(url, token)
        deadline = time.monotonic() + 180
        while True:
            if api.poll() is not None:
                typer.secho(f"the API exited ({api.returncode}); see {logs / 'quickstart_api.log'}", fg="red", err=True)
                return 1
            try:
                code, _ = client.readyz()
                if code == 200:
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                typer.secho("the API did not become ready in 180 s", fg="red", err=True)
                return 1
            time.sleep(0.5)
        if start_ui:
            with open(logs / "mlflow_ui.log", "ab") as out:
                ui = subprocess.Popen(
                    ui_cmd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        typer.echo(f"submitting {spec} ...")
        created = client.submit(spec)
        typer.echo(f"sweep {created['id']} queued")
        final = follow(client, created["id"])
        if final["status"] != SweepStatus.SUCCEEDED:
            typer.secho(f"sweep {final['status']}: {final.get('error') or ''}", fg="red", err=True)
            return 1
        print_sweep_best(client, created["id"], final)
        links = final.get("links") or {}
        typer.echo(f"MLflow tracking URI: {tracking_uri}  (MLFLOW_TRACKING_URI for mlflow.pyfunc.load_model)")
        typer.echo(f"the sweep page: {links.get('report') or ui_url}")
        typer.echo(f"its runs:       {links.get('mlflow') or ui_url}")
        if not start_ui:
            typer.echo(f"(the MLflow UI is not running: `rfsweep ui --port {ui_port}` serves it)")
        if keep_running:
            typer.echo(
                f"still running: API {url} (pid {api.pid}, token {token}), "
                + (f"MLflow UI {ui_url} (pid {ui.pid})" if ui else "no MLflow UI")
                + f"; stop them with: kill {api.pid}"
                + (f" {ui.pid}" if ui else "")
            )
        return 0
    except ApiError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        return 2
    except KeyboardInterrupt:
        keep_running = False
        return 130
    finally:
        if not keep_running:
            if ui is not None:
                typer.echo(
                    f"stopping the MLflow UI; `rfsweep ui --port {ui_port}` serves it again for these links "
                    "(or run quickstart with --keep-running)"
                )
            _stop(ui, "the MLflow UI", 20)
            _stop(api, "the API")
