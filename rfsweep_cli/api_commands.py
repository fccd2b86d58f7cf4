"""`rfsweep` commands of the api layer: serve, submit, status, best, trials, cancel, pause, resume, list,
quickstart, ui."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.client import RfsweepClient

from rfsweep_cli.display import best_entry, follow, print_sweep_best, progress_line, short_params
from sweep_service.paths import LOCAL_MLFLOW_UI_PORT
from sweep_service.records import TrialSummary
from sweep_service.status import ProgressCounts, SweepStatus

UrlOption = Annotated[str | None, typer.Option("--url", envvar="RFSWEEP_URL", help="API base URL.")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="RFSWEEP_API_TOKEN", help="Bearer token (RFSWEEP_API_TOKEN).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]
# How long, after SIGTERM or Ctrl-C, the child of `serve` (uvicorn: the API stops its drivers, then its Ray
# head) and of `ui` (mlflow ui) get to stop what they started before everything left under the command is
# sent SIGTERM, then SIGKILL 5 s later (rfsweep_cli/process_tree.py).
SERVE_STOP_GRACE_S = 30.0
UI_STOP_GRACE_S = 10.0


def _client(url: str | None, token: str | None) -> RfsweepClient:
    from api.client import RfsweepClient

    return RfsweepClient(url, token)


def _fail(exc: Exception) -> None:
    from api.client import ApiError

    if isinstance(exc, ApiError):
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2)
    import httpx

    if isinstance(exc, httpx.TransportError):
        typer.secho(f"error: cannot reach the API ({type(exc).__name__}: {exc})", err=True, fg="red")
        raise typer.Exit(3)
    raise exc


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the CLI."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes (one of them dispatches).")] = 1,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Run the HTTP API (uvicorn). Settings come from the environment and .env (see README).

        uvicorn runs as this command's child; SIGTERM or Ctrl-C stops it gracefully (the API stops its sweep
        drivers and its own Ray head; the next start resumes their sweeps), then whatever is left under it."""
        import sys

        from api.app import ensure_schema
        from rfsweep_cli.process_tree import owned_processes

        ensure_schema()
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.app:create_app",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            log_level,
            "--access-log" if log_level == "debug" else "--no-access-log",
        ]
        with owned_processes(grace_s=SERVE_STOP_GRACE_S) as owner:
            code = owner.popen(cmd, stdin=subprocess.DEVNULL).wait()
        raise typer.Exit(code)

    @app.command()
    def submit(
        spec: Annotated[Path, typer.Argument(help="Sweep spec (YAML or JSON).", exists=True, dir_okay=False)],
        url: UrlOption = None,
        token: TokenOption = None,
        wait: Annotated[
            bool, typer.Option("--wait", help="Follow the sweep until it ends, then print the best.")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Submit a sweep spec to the API."""
        with _client(url, token) as client:
            try:
                created = client.submit(spec)
                if not wait:
                    typer.echo(
                        json.dumps(created) if as_json else f"submitted sweep {created['id']} ({created['status']})"
                    )
                    return
                typer.echo(f"submitted sweep {created['id']}", err=True)
                final = follow(client, created["id"])
                if final["status"] != SweepStatus.SUCCEEDED:
                    typer.secho(f"sweep {final['status']}: {final.get('error') or ''}", err=True, fg="red")
                    raise typer.Exit(1)
                if as_json:
                    typer.echo(json.dumps({"id": created["id"], **client.best(created["id"])}))
                else:
                    print_sweep_best(client, created["id"], final)
            except typer.Exit:
                raise
            except Exception as exc:
                _fail(exc)

    @app.command()
    def status(sweep_id: str, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
        """A sweep's status and progress."""
        with _client(url, token) as client:
            try:
                sweep = client.get(sweep_id)
            except Exception as exc:
                _fail(exc)
        if as_json:
            typer.echo(json.dumps(sweep))
            return
        typer.echo(f"{sweep['id']} {sweep.get('name') or ''}")
        typer.echo(progress_line(sweep))
        if sweep.get("error"):
            typer.echo(f"error: {sweep['error']}")
        links = sweep.get("links") or {}
        for label, key in (("MLflow runs", "mlflow"), ("sweep page", "report")):
            if links.get(key):
                typer.echo(f"{label}: {links[key]}")
        if sweep.get("best"):
            with _client(url, token) as client:
                try:
                    print_sweep_best(client, sweep_id, sweep)
                except Exception as exc:
                    _fail(exc)

    @app.command()
    def best(sweep_id: str, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
        """The best configuration of a sweep (so far), per rule, with its MLflow model once the sweep ended."""
        with _client(url, token) as client:
            try:
                if as_json:
                    typer.echo(json.dumps(client.best(sweep_id)))
                else:
                    print_sweep_best(client, sweep_id)
            except Exception as exc:
                _fail(exc)

    @app.command()
    def trials(sweep_id: str, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
        """A sweep's trials: rule, status, epochs, the sweep's metric, searched parameters, start time."""
        from rich.console import Console
        from rich.table import Table

        with _client(url, token) as client:
            try:
                rows = client.trials(sweep_id)
                best = best_entry(client.get(sweep_id).get("best"))
            except Exception as exc:
                _fail(exc)
        if as_json:
            typer.echo(json.dumps(rows))
            return
        metric = best.metric if best else "metric"
        table = Table(box=None, pad_edge=False)
        for column in ("trial", "rule", "status", "epochs", f"last {metric}", "started (UTC)", "searched parameters"):
            table.add_column(column, overflow="fold")
        for t in map(TrialSummary.model_validate, rows):
            table.add_row(
                t.trial_id,
                t.algorithm,
                t.status.value,
                str(t.epochs),
                "–" if t.last_metric is None else f"{t.last_metric:.4f}",
                t.started_at.strftime("%Y-%m-%d %H:%M:%S") if t.started_at else "",
                short_params(t.params),
            )
        Console().print(table)

    @app.command()
    def cancel(sweep_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
        """Cancel a sweep (queued: at once; running: its trials stop)."""
        with _client(url, token) as client:
            try:
                sweep = client.cancel(sweep_id)
            except Exception as exc:
                _fail(exc)
        typer.echo(
            f"{sweep['id']}: {sweep['status']}" + (" (cancelling)" if sweep["status"] == SweepStatus.RUNNING else "")
        )

    @app.command()
    def pause(sweep_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
        """Pause a sweep: its trials stop at their newest checkpoints; `rfsweep resume` continues them."""
        with _client(url, token) as client:
            try:
                sweep = client.pause(sweep_id)
            except Exception as exc:
                _fail(exc)
        typer.echo(f"{sweep['id']}: {sweep['status']}" + (" (pausing)" if sweep.get("pause_requested") else ""))

    @app.command()
    def resume(sweep_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
        """Resume a paused sweep from its trials' checkpoints, in the same MLflow runs."""
        with _client(url, token) as client:
            try:
                sweep = client.resume(sweep_id)
            except Exception as exc:
                _fail(exc)
        typer.echo(f"{sweep['id']}: {sweep['status']}")

    @app.command()
    def ui(
        port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = LOCAL_MLFLOW_UI_PORT,
        tracking_uri: Annotated[
            str | None, typer.Option(help="MLflow store (default: MLFLOW_TRACKING_URI, else the local one).")
        ] = None,
        open_browser: Annotated[bool, typer.Option("--open", help="Also open it in a web browser.")] = False,
    ) -> None:
        """Serve the MLflow UI on the local store (where sweep links point), until Ctrl-C or SIGTERM (which
        stop `mlflow ui` and everything it started: its server, job runner and huey consumers)."""
        import sys
        import webbrowser

        from rfsweep_cli.process_tree import owned_processes
        from sweep_service.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(tracking_uri)
        if uri.startswith(("http://", "https://")):
            typer.echo(f"MLflow UI: {uri} (a tracking server already serves it)")
            if open_browser:
                webbrowser.open(uri)
            return
        address = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
        typer.echo(f"MLflow UI for {uri} at {address} (Ctrl-C stops it)", err=True)
        if open_browser:
            webbrowser.open(address)
        with owned_processes(grace_s=UI_STOP_GRACE_S) as owner:
            code = owner.popen([*cmd, "--port", str(port)], stdin=subprocess.DEVNULL).wait()
        raise typer.Exit(code)

    @app.command("list")
    def list_(
        url: UrlOption = None,
        token: TokenOption = None,
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        limit: Annotated[int, typer.Option(help="How many (newest first).")] = 20,
        as_json: JsonOption = False,
    ) -> None:
        """Sweeps, newest first."""
        from rich.console import Console
        from rich.table import Table

        with _client(url, token) as client:
            try:
                page = client.list(status=status, limit=limit)
            except Exception as exc:
                _fail(exc)
        if as_json:
            typer.echo(json.dumps(page))
            return
        # 80 columns: the full id (it is what the other commands take), then what fits; the name is cut last.
        table = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True)
        for column, width in (("id", 36), ("status", 9), ("trials", 5), ("best", 6), ("created", 11)):
            table.add_column(column, no_wrap=True, min_width=width, justify="right" if column == "trials" else "left")
        table.add_column("name", no_wrap=True, overflow="ellipsis", ratio=1)
        for s in page["items"]:
            p, b = ProgressCounts.from_dict(s["progress"]), best_entry(s.get("best"))
            table.add_row(
                s["id"],
                s["status"],
                f"{p.done}/{p.total}",
                f"{b.value:.4f}" if b is not None else "–",
                s["created_at"][5:16].replace("T", " "),
                s.get("name") or "",
            )
        Console().print(table)

    @app.command()
    def quickstart(
        spec: Annotated[Path | None, typer.Option(help="Spec to run (default examples/digits_quick.yaml).")] = None,
        port: Annotated[int, typer.Option(help="API port (0: a free one).")] = 0,
        mlflow_port: Annotated[int, typer.Option(help="MLflow UI port (0: 5000 if free, else a free one).")] = 0,
        keep_running: Annotated[
            bool, typer.Option("--keep-running", help="Leave the API and MLflow UI running.")
        ] = False,
        no_ui: Annotated[bool, typer.Option("--no-ui", help="Do not start the MLflow UI; print its command.")] = False,
    ) -> None:
        """The README's main job on the embedded default: start the API (local Ray, SQLite stores), submit
        the digits example, follow it, print the best configuration and the MLflow UI address."""
        from rfsweep_cli.quickstart import run_quickstart

        raise typer.Exit(
            run_quickstart(spec=spec, port=port, mlflow_port=mlflow_port, keep_running=keep_running, start_ui=not no_ui)
        )


__all__ = ["register"]
