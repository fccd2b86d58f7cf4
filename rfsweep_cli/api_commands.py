"""`rfsweep` commands of the api layer: serve, submit, status, best, cancel, list, quickstart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

UrlOption = Annotated[Optional[str], typer.Option("--url", envvar="RFSWEEP_URL", help="API base URL.")]
TokenOption = Annotated[
    Optional[str],
    typer.Option("--token", envvar="RFSWEEP_API_TOKEN", help="Bearer token (RFSWEEP_API_TOKEN).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]


def _client(url: str | None, token: str | None):
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


def _print_best(best: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    overall = best.get("best") or {}
    table = Table(title=f"Best configuration per algorithm ({overall.get('metric')})")
    table.add_column("algorithm", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("searched parameters", min_width=18)
    table.add_column("trial", no_wrap=True)
    table.add_column("MLflow run", overflow="fold")
    rows = dict(best.get("best_per_algorithm") or {}) or {overall.get("algorithm") or "-": overall}
    for algorithm, entry in rows.items():
        value = entry.get("value")
        params = entry.get("params") or entry.get("config") or {}
        table.add_row(
            str(algorithm),
            f"{value:.4f}" if isinstance(value, float) else str(value),
            ", ".join(f"{k}={_short(v)}" for k, v in params.items()),
            str(entry.get("trial_id")),
            str(entry.get("mlflow_run_id")),
        )
    console = Console()
    console.print(table)
    console.print(f"overall best: {overall.get('algorithm')} {overall.get('metric')}={overall.get('value')}")
    console.print(f"  config: {json.dumps(overall.get('config'), sort_keys=True)}", soft_wrap=True)
    if overall.get("weights_uri"):
        console.print(f"  weights: {overall['weights_uri']}", soft_wrap=True)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def _progress_line(sweep: dict[str, Any]) -> str:
    p = sweep.get("progress") or {}
    best = sweep.get("best") or {}
    best_text = f" best {best.get('metric')}={best.get('value'):.4f}" if isinstance(best.get("value"), float) else ""
    return (
        f"{sweep['status']}: trials {p.get('finished', 0)} finished, {p.get('stopped_early', 0)} stopped early, "
        f"{p.get('running', 0)} running, {p.get('failed', 0) + p.get('diverged', 0)} failed/diverged of "
        f"{p.get('total', 0)}; epochs {p.get('epochs_done', 0)}/{p.get('max_epochs', 0)}{best_text}"
    )


def follow(client, sweep_id: str, *, poll_s: float = 1.0) -> dict[str, Any]:
    """Follow a sweep with a live progress display until it ends."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    if not console.is_terminal:  # logs and pipes: one plain line per change
        last = None
        while True:
            sweep = client.get(sweep_id)
            line = _progress_line(sweep)
            if line != last:
                print(line, flush=True)
                last = line
            if sweep["status"] in ("succeeded", "failed", "cancelled"):
                return sweep
            time.sleep(poll_s)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("sweep", total=None, detail="queued")
        while True:
            sweep = client.get(sweep_id)
            p = sweep.get("progress") or {}
            bar.update(
                task,
                total=p.get("max_epochs") or None,
                completed=p.get("epochs_done", 0),
                description=sweep["status"],
                detail=_progress_line(sweep).split(": ", 1)[1],
            )
            if sweep["status"] in ("succeeded", "failed", "cancelled"):
                return sweep
            time.sleep(poll_s)


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the CLI."""

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        workers: Annotated[int, typer.Option(help="uvicorn worker processes (one of them dispatches).")] = 1,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Run the HTTP API (uvicorn). Settings come from the environment and .env (see README)."""
        import uvicorn

        from api.app import ensure_schema

        ensure_schema()
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=log_level == "debug",
        )

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
                typer.echo(f"submitted sweep {created['id']}", err=as_json)
                final = follow(client, created["id"])
                if final["status"] != "succeeded":
                    typer.secho(f"sweep {final['status']}: {final.get('error') or ''}", err=True, fg="red")
                    raise typer.Exit(1)
                best = client.best(created["id"])
            except typer.Exit:
                raise
            except Exception as exc:
                _fail(exc)
        if as_json:
            typer.echo(json.dumps({"id": created["id"], **best}))
        else:
            _print_best(best)

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
        typer.echo(_progress_line(sweep))
        if sweep.get("error"):
            typer.echo(f"error: {sweep['error']}")
        if (sweep.get("mlflow") or {}).get("ui_url"):
            typer.echo(f"MLflow: {sweep['mlflow']['ui_url']}")

    @app.command()
    def best(sweep_id: str, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
        """The best configuration of a sweep (so far)."""
        with _client(url, token) as client:
            try:
                answer = client.best(sweep_id)
            except Exception as exc:
                _fail(exc)
        if as_json:
            typer.echo(json.dumps(answer))
        else:
            _print_best(answer)

    @app.command()
    def cancel(sweep_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
        """Cancel a sweep (queued: at once; running: its trials stop)."""
        with _client(url, token) as client:
            try:
                sweep = client.cancel(sweep_id)
            except Exception as exc:
                _fail(exc)
        typer.echo(f"{sweep['id']}: {sweep['status']}" + (" (cancelling)" if sweep["status"] == "running" else ""))

    @app.command("list")
    def list_(
        url: UrlOption = None,
        token: TokenOption = None,
        status: Annotated[Optional[str], typer.Option(help="Only this status.")] = None,
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
        table = Table()
        table.add_column("id", no_wrap=True, min_width=36)
        for col in ("name", "status", "created", "trials done", "best"):
            table.add_column(col)
        for s in page["items"]:
            p, b = s["progress"], s.get("best") or {}
            done = p["finished"] + p["stopped_early"] + p["failed"] + p["diverged"] + p["cancelled"]
            table.add_row(
                s["id"],
                s.get("name") or "",
                s["status"],
                s["created_at"][:19].replace("T", " "),
                f"{done}/{p['total']}",
                f"{b.get('value'):.4f}" if isinstance(b.get("value"), float) else "",
            )
        Console().print(table)

    @app.command()
    def quickstart(
        spec: Annotated[Optional[Path], typer.Option(help="Spec to run (default examples/digits_quick.yaml).")] = None,
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


__all__ = ["register", "follow"]
