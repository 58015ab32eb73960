"""An ASGI middleware that refuses oversized request bodies with a JSON 413 before anything parses them."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.schemas import Problem


class RequestBodyLimit:
    """Caps every request body at `max_bytes`, by Content-Length up front and by counting a chunked body.

    Starlette's own limiter answers a declared-too-long body in plain text; clients of this API always get JSON.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, detail: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = detail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse(Problem(detail=self.detail).body(), status_code=413)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the route's body parsing, so the app's handler renders it as JSON.
                    raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counting_receive, send)
