"""`create_app(settings)`: the case service as a FastAPI app, its database migrated to head."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.to_thread import current_default_thread_limiter
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from service.auth import hash_key
from service.body_limit import RequestBodyLimit
from service.console import routes as console
from service.db import KeyedLock, make_engine, make_sessions
from service.delivery import DB_THREADS, WebhookWorker
from service.deps import Clock, Services
from service.early_auth import AuthenticateBeforeBody
from service.evidence import LocalEvidenceStore
from service.metrics import Metrics, RequestTimer
from service.migrations import upgrade_engine
from service.routes import actions, cases, gridmap, keys, kpis, ops, verifications, webhooks
from service.schemas import FieldError, Problem
from service.server_errors import ServerErrorsAsJson
from service.settings import ServiceSettings


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: ServiceSettings, *, clock: Clock = _utc_now) -> FastAPI:
    """Build the app: connect to and migrate the database, open the evidence store, wire the routes.

    Args:
        settings: where the data lives and how posts are merged.
        clock: wall time for `created_at` and review times; tests pass their own.
    """
    engine = make_engine(settings.resolved_database_url, pool_size=settings.workers)
    try:
        upgrade_engine(engine)
    except BaseException:
        engine.dispose()
        raise
    sessions = make_sessions(engine)
    metrics = Metrics(sessions)
    bootstrap = settings.bootstrap_agent_key
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=LocalEvidenceStore(settings.resolved_evidence_dir),
        metrics=metrics,
        clock=clock,
        case_posts=KeyedLock(),
        bootstrap_key_hash=None if bootstrap is None else hash_key(bootstrap.get_secret_value()),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes, dependencies and middleware all run on this event loop's default thread pool: as many
        # threads as the pool has connections.
        current_default_thread_limiter().total_tokens = settings.workers
        # The webhook worker has a pool of its own, so that it never holds a connection a request counts on.
        worker_engine = make_engine(settings.resolved_database_url, pool_size=DB_THREADS)
        worker = WebhookWorker(settings=settings, sessions=make_sessions(worker_engine), metrics=metrics)
        stop = anyio.Event()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(worker.run, stop)
                try:
                    yield
                finally:
                    stop.set()
        finally:
            worker_engine.dispose()
            engine.dispose()

    app = FastAPI(
        title="streetwatch case service",
        summary="Draft cases from camera agents, evidence, and reviewers' decisions.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served by the console module from packaged files: no CDN
        redoc_url=None,
    )
    app.state.services = services
    app.add_middleware(AuthenticateBeforeBody, services=services)
    app.add_middleware(
        RequestBodyLimit,
        max_bytes=settings.max_request_bytes,
        detail=f"request body is larger than {settings.max_request_bytes} bytes: at most "
        f"{settings.max_evidence_parts} evidence images of {settings.max_evidence_bytes} bytes each",
    )
    app.add_middleware(RequestTimer, metrics=metrics)
    app.add_middleware(ServerErrorsAsJson)
    app.include_router(cases.router, form_limits={"max_files": settings.max_evidence_parts, "max_fields": 4})
    app.include_router(actions.router)
    app.include_router(gridmap.router)
    app.include_router(keys.router)
    app.include_router(kpis.router)
    app.include_router(ops.router)
    app.include_router(webhooks.router)
    app.include_router(verifications.router, form_limits={"max_files": 1, "max_fields": 4})
    routers = (
        cases.router,
        actions.router,
        gridmap.router,
        keys.router,
        kpis.router,
        ops.router,
        webhooks.router,
        verifications.router,
    )
    routes = [route for router in routers for route in router.routes]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        # How many images a post may carry is this deployment's setting, not a constant of the code.
        schema["components"]["schemas"]["CaseForm"]["properties"]["evidence"]["maxItems"] = settings.max_evidence_parts
        # The action route parses its body itself (JSON, or multipart for handle); its models join the document.
        _defs, extra = models_json_schema(
            [(model, "validation") for model in actions.BODY_MODELS], ref_template="#/components/schemas/{model}"
        )
        for name, definition in extra.get("$defs", {}).items():
            schema["components"]["schemas"].setdefault(name, definition)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its document
    console.install(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return JSONResponse(Problem(detail=detail, errors=errors).body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route on the path only (POST of /api/v1/cases,
            # not its GET); a client, and the OpenAPI document, go by all of them.
            headers = {**(headers or {}), "Allow": ", ".join(_methods_at(routes, request.scope))}
        return JSONResponse(Problem(detail=str(exc.detail)).body(), status_code=exc.status_code, headers=headers)

    return app


def _methods_at(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method one of `routes` answers at the request's path."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _field_error(error: dict[str, Any]) -> FieldError:
    loc: Sequence[str | int] = error.get("loc", ())
    if error.get("type") == "json_invalid":
        # FastAPI reports a character offset as the location of broken JSON; name the part instead.
        where = "case" if "case" in loc else "body"
        reason = error.get("ctx", {}).get("error") or error.get("msg", "")
        return FieldError(field=where, message=f"invalid JSON: {reason}")
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return FieldError(field=field or "body", message=str(error.get("msg", "invalid")))
