"""ASGI middleware of the API: every request answered (a 500 too, on a connection that stays usable), bodies
over the size limit refused before they are read, and, without a token, browsers' cross-origin writes refused."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response, log_unexpected
from sweep_service.problems import shown

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AnswerServerErrors:
    """An exception in a route is answered `500 {"detail": "internal server error"}` and logged once, briefly.

    Starlette's own last resort answers too, but then re-raises to the server, and uvicorn drops the
    connection without a word: a keep-alive client's next request on it fails. Here the exception ends with
    the answer and the connection stays usable."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log_unexpected(exc)
            if started:  # half an answer is out: only closing the connection tells the client
                raise
            await error_response(500, "internal server error")(scope, receive, send)


class BodySizeLimit:
    """Answer 413 to a request whose Content-Length is over the limit, before its body is read.

    A body sent without a Content-Length (chunked) passes here; the route that reads it counts its bytes
    as they arrive and stops at the same limit (`api/routes/sweeps.py`)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await error_response(413, f"request body exceeds {self.max_bytes} bytes")(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class CrossOriginWrites:
    """Without a token, a write must show it was meant: a browser page on another site can send a POST (a form,
    or fetch without a preflight) but not hide where it comes from. Refused (403):
    - a request with an `Origin` that is neither in RFSWEEP_ALLOWED_ORIGINS nor this server's own origin on a
      loopback name (`http://127.0.0.1:8000` for a server there; a name resolving to loopback by DNS
      rebinding is not a loopback name);
    - a request without `Origin` whose `Sec-Fetch-Site` says it crossed sites.
    Clients that are not browsers (the CLI, curl) send neither and pass. (A body must also say it is JSON or
    YAML: `api/validation.py`, 415.) A token remains the real protection; with one, this check is off."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]):
        self.app = app
        self.allowed = {origin.lower().rstrip("/") for origin in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            refusal = self.refusal(scope)
            if refusal is not None:
                await error_response(403, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", ())}
        origin, site = headers.get(b"origin"), headers.get(b"sec-fetch-site")
        if origin is None:
            if site in ("cross-site", "same-site"):
                return f"cross-origin write refused (Sec-Fetch-Site: {shown(site)}): {_HOW}"
            return None
        origin = origin.strip().lower().rstrip("/")
        if origin in self.allowed or _own_loopback_origin(origin, scope.get("scheme", "http"), headers.get(b"host")):
            return None
        return f"cross-origin write refused (Origin {shown(origin)}): {_HOW}"


_HOW = (
    "this server has no token, so only its own loopback origin and RFSWEEP_ALLOWED_ORIGINS may write; "
    "set RFSWEEP_API_TOKEN, or add the origin to RFSWEEP_ALLOWED_ORIGINS"
)


def _own_loopback_origin(origin: str, scheme: str, host: str | None) -> bool:
    """`origin` is the request's own (scheme, host and port of its Host header) and that host is a loopback
    name or address."""
    if host is None:
        return False
    try:
        asked, served = urlsplit(origin), urlsplit(f"{scheme}://{host.strip().lower()}")
        default = {"http": 80, "https": 443}
        same = (asked.scheme, asked.hostname, asked.port or default.get(asked.scheme)) == (
            served.scheme,
            served.hostname,
            served.port or default.get(served.scheme),
        )
    except ValueError:  # a malformed port or host
        return False
    return same and served.hostname is not None and _is_loopback_name(served.hostname)


def _is_loopback_name(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
