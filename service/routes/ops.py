"""Operations endpoints: `/healthz` for probes and `/metrics` for Prometheus (neither needs a key)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from service.db import ping
from service.deps import ServicesDep

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


@router.get("/metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
