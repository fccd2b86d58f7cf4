"""/readyz: is the database, the MLflow store and the Ray cluster reachable?"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.settings import Settings


def check_all(settings: Settings, engine: Engine) -> tuple[dict[str, str], bool]:
    checks = {"database": _database(engine), "mlflow": _mlflow(settings), "ray": _ray(settings)}
    return checks, all(v.startswith("ok") for v in checks.values())


def _database(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return "ok"
    except Exception as exc:  # report, don't raise: /readyz answers 503 naming the part
        return f"unreachable: {type(exc).__name__}"


def _mlflow(settings: Settings) -> str:
    uri = settings.resolved_tracking_uri
    if uri.startswith(("http://", "https://")):
        import httpx

        # A real API call, not /health: a misconfigured --allowed-hosts answers 403 here while /health is 200.
        try:
            response = httpx.get(
                f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=3.0
            )
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}"
        if response.status_code != 200:
            return f"unreachable: HTTP {response.status_code} from the tracking server"
        return "ok"
    if uri.startswith("sqlite:///"):
        from pathlib import Path

        folder = Path(uri[len("sqlite:///") :]).parent
        return "ok" if folder.is_dir() or not folder.exists() else f"unreachable: {folder} is not a folder"
    return "ok (not checked)"


def _tcp(address: str, timeout: float = 2.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def ray_gcs_address(address: str) -> str | None:
    """host:port to probe for a RAY_ADDRESS, or None where it is not a plain address ('auto', 'local')."""
    if "://" in address:
        parsed = urlparse(address)
        if parsed.hostname is None:
            return None
        return f"{parsed.hostname}:{parsed.port or 10001}"
    if ":" in address:
        return address
    return None


def _ray(settings: Settings) -> str:
    if settings.ray_address:
        target = ray_gcs_address(settings.ray_address)
        if target is None:
            return "ok (not checked)"
        return "ok" if _tcp(target) else f"unreachable: {target}"
    if settings.max_running_sweeps == 0:
        return "ok (queue-only: no Ray needed)"
    from api.local_ray import read_head_address

    address = read_head_address(settings)
    if address is None:
        return "unreachable: the local Ray head has not started yet"
    return "ok" if _tcp(address) else f"unreachable: local Ray head {address}"
