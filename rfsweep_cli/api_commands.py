"""`rfsweep` commands of the api layer: serve, submit, status, best, cancel, list, quickstart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.client import RfsweepClient

from rfsweep_cli.display import follow, print_best, progress_line
from sweep_service.status import ProgressCounts, SweepStatus

UrlOption = Annotated[str | None, typer.Option("--url", envvar="RFSWEEP_URL", help="API base URL.")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="RFSWEEP_API_TOKEN", help="Bearer token (RFSWEEP_API_TOKEN).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")]


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
                if final["status"] != SweepStatus.SUCCEEDED:
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
            print_best(best)

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
            print_best(answer)

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
        table = Table()
        table.add_column("id", no_wrap=True, min_width=36)
        for col in ("name", "status", "created", "trials done", "best"):
            table.add_column(col)
        for s in page["items"]:
            p, b = ProgressCounts.from_dict(s["progress"]), s.get("best") or {}
            table.add_row(
                s["id"],
                s.get("name") or "",
                s["status"],
                s["created_at"][:19].replace("T", " "),
                f"{p.done}/{p.total}",
                f"{b.get('value'):.4f}" if isinstance(b.get("value"), float) else "",
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
