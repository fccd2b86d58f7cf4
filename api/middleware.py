"""ASGI middleware of the API."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response


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
