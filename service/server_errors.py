"""An ASGI middleware that answers any unhandled error with the documented JSON error shape and a request id."""

from __future__ import annotations

import logging
import uuid

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.schemas import Problem

log = logging.getLogger(__name__)

#: The response header that carries a failed request's id (the log line of its error names the same id).
REQUEST_ID_HEADER = "X-Request-ID"


class ServerErrorsAsJson:
    """Turns an exception that escaped every handler into a JSON 500 `Problem` whose `request_id` the log line
    with the traceback also names, so an operator can find it from a client's report.

    Without it Starlette answers in plain text and re-raises, and the server drops the keep-alive connection.
    An error after the response has started cannot be answered any more: it is logged and re-raised.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:
            request_id = uuid.uuid4().hex
            log.exception("request %s failed: %s %s", request_id, scope.get("method"), scope.get("path"))
            if started:
                raise
            problem = Problem(
                detail=f"internal error; the service log names it by request id {request_id}", request_id=request_id
            )
            response = JSONResponse(problem.body(), status_code=500, headers={REQUEST_ID_HEADER: request_id})
            await response(scope, receive, send)
