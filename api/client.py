"""A small client of the rfsweep HTTP API (httpx).

client = RfsweepClient("http://127.0.0.1:8000", token="...")
sweep = client.submit("examples/digits_quick.yaml")
final = client.wait(sweep["id"])
print(client.best(sweep["id"])["best"]["config"])
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from sweep_service.status import TERMINAL_SWEEP_STATUSES

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """A non-2xx answer: the status code and the server's `detail`."""

    def __init__(self, status_code: int, detail: Any):
        self.status_code, self.detail = status_code, detail
        super().__init__(f"HTTP {status_code}: {format_detail(detail)}")


def format_detail(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{d.get('path') or '.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
            if isinstance(d, dict)
            else str(d)
            for d in detail
        )
    return str(detail)


class RfsweepClient:
    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0, retries: int = 3):
        self.url = (url or os.environ.get("RFSWEEP_URL") or DEFAULT_URL).rstrip("/")
        token = token if token is not None else os.environ.get("RFSWEEP_API_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RfsweepClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, *, retry: bool = False, **kwargs: Any) -> httpx.Response:
        attempts = self.retries if retry else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except httpx.TransportError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5 * 2**attempt)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(response.status_code, detail)
        return response

    # --- sweeps -----------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any] | str | Path, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """POST a spec (a dict, a YAML/JSON file path, or YAML text). Retries are safe: they share one
        Idempotency-Key, so a retried POST returns the first sweep instead of creating a second."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if isinstance(spec, dict):
            content, headers["Content-Type"] = json.dumps(spec).encode(), "application/json"
        else:
            text = Path(spec).read_text() if _is_file(spec) else str(spec)
            is_json = str(spec).endswith(".json") or text.lstrip().startswith("{")
            headers["Content-Type"] = "application/json" if is_json else "application/yaml"
            content = text.encode()
        return self._request("POST", "/sweeps", content=content, headers=headers, retry=True).json()

    def get(self, sweep_id: str) -> dict[str, Any]:
        return self._request("GET", f"/sweeps/{sweep_id}", retry=True).json()

    def best(self, sweep_id: str) -> dict[str, Any]:
        return self._request("GET", f"/sweeps/{sweep_id}/best", retry=True).json()

    def trials(self, sweep_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/sweeps/{sweep_id}/trials", retry=True).json()["trials"]

    def cancel(self, sweep_id: str) -> dict[str, Any]:
        return self._request("POST", f"/sweeps/{sweep_id}/cancel", retry=True).json()

    def pause(self, sweep_id: str) -> dict[str, Any]:
        return self._request("POST", f"/sweeps/{sweep_id}/pause", retry=True).json()

    def resume(self, sweep_id: str) -> dict[str, Any]:
        return self._request("POST", f"/sweeps/{sweep_id}/resume", retry=True).json()

    def list(self, *, status: str | None = None, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._request("GET", "/sweeps", params=params, retry=True).json()

    def iter_sweeps(self, *, status: str | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.list(status=status, limit=page_size, cursor=cursor)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def wait(
        self,
        sweep_id: str,
        *,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        until: tuple[str, ...] = TERMINAL_SWEEP_STATUSES,
    ) -> dict[str, Any]:
        """Poll until the sweep reaches one of `until` (by default: it ended); returns that state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            sweep = self.get(sweep_id)
            if on_update is not None:
                on_update(sweep)
            if sweep["status"] in until:
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} still {sweep['status']} after {timeout_s} s")
            time.sleep(poll_s)

    # --- health -----------------------------------------------------------------------------

    def healthz(self) -> dict[str, Any]:
        return self._request("GET", "/healthz").json()

    def readyz(self) -> tuple[int, dict[str, Any]]:
        response = self._http.get("/readyz")
        return response.status_code, response.json()


def _is_file(spec: str | Path) -> bool:
    if isinstance(spec, Path):
        return True
    if "\n" in spec or len(spec) > 4096:
        return False
    try:
        return Path(spec).is_file()
    except OSError:
        return False
