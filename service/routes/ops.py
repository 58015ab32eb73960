"""Operations endpoints: `/healthz` for probes (no key) and `/metrics` for Prometheus (a key, unless open)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from service.db import ping
from service.deps import ServicesDep, authenticate
from service.schemas import Problem

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_class=JSONResponse, responses={503: {"description": "The database is unreachable."}})
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the database answers, 503 when it does not."""
    try:
        ping(services.engine)
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=Response, responses={401: {"model": Problem}})
def metrics(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus text exposition of this app's registry; any valid API key unless `metrics_access` is open."""
    if services.settings.metrics_access == "key":
        authenticate(services, authorization)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
