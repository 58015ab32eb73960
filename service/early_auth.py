"""An ASGI middleware that checks the API key of a write request before its body is read."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.deps import Services, authenticate
from service.schemas import Problem

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuthenticateBeforeBody:
    """Answers 401 to a write under `/api/v1` whose key is missing, unknown or revoked, without reading its body.

    FastAPI parses a multipart body before it resolves dependencies, so without this an anonymous client could
    make the service read a whole upload (up to the body limit) before hearing 401. The principal found here is
    handed on in the request state, so the route's own dependency does not look the key up again.
    """

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITES or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        try:
            principal = await run_in_threadpool(authenticate, self.services, Headers(scope=scope).get("authorization"))
        except HTTPException as exc:
            response = JSONResponse(Problem(detail=str(exc.detail)).body(), exc.status_code, exc.headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
