"""`rfsweep quickstart`: the whole embedded stack on localhost, one command."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from rfsweep_cli.process_tree import ProcessOwner, owned_processes

# After SIGTERM, Ctrl-C or the end of the run: how long the API (its drivers, then its Ray head) and the MLflow
# UI get to stop what they started before everything left under quickstart gets SIGTERM, then SIGKILL.
STOP_GRACE_S = 30.0


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


def run_quickstart(*, spec: Path | None, port: int, mlflow_port: int, keep_running: bool, start_ui: bool) -> int:
    """Every process quickstart starts (the API and what it starts, the MLflow UI and what it starts) is
    stopped when it ends — on success, failure, SIGTERM or Ctrl-C — unless it succeeded with --keep-running."""
    with owned_processes(grace_s=STOP_GRACE_S) as owner:
        code = _quickstart(owner, spec=spec, port=port, mlflow_port=mlflow_port, keep_running=keep_running,
                           start_ui=start_ui)  # fmt: skip
        if code == 0 and keep_running:
            owner.keep_running()
        return code


def _quickstart(
    owner: ProcessOwner, *, spec: Path | None, port: int, mlflow_port: int, keep_running: bool, start_ui: bool
) -> int:
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
        api = owner.popen(
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
                ui = owner.popen(
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
    finally:
        if ui is not None and not keep_running:
            typer.echo(
                f"stopping the API and the MLflow UI; `rfsweep ui --port {ui_port}` serves it again for these "
                "links (or run quickstart with --keep-running)"
            )
