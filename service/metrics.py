"""Prometheus metrics of one app, in a registry of its own so several apps can share a process."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import crud, webhooks

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REVIEW_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0)


class CaseCountCollector(Collector):
    """Counts cases by type and status from the database at scrape time, so every process reports the truth."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("streetwatch_cases", "Cases stored, by type and status.", labels=["type", "status"])
        try:
            with self._sessions() as session:
                counts = crud.count_cases(session=session)
        except SQLAlchemyError:
            log.warning("cannot count cases for /metrics", exc_info=True)
            return
        for case_type, status, n in counts:
            family.add_metric([case_type.value, status.value], n)
        yield family


class WebhookPendingCollector(Collector):
    """Events waiting for each webhook, read from the database at scrape time (every process reports the truth)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "streetwatch_webhook_pending_events", "Events waiting for delivery, by webhook id.", labels=["webhook"]
        )
        try:
            with self._sessions() as session:
                counts = [
                    (w.id, webhooks.pending(session=session, webhook=w))
                    for w in webhooks.list_webhooks(session=session)
                ]
        except SQLAlchemyError:
            log.warning("cannot count pending webhook events for /metrics", exc_info=True)
            return
        for webhook_id, n in counts:
            family.add_metric([str(webhook_id)], n)
        yield family


class Metrics:
    """The metrics one app exports."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "streetwatch_http_request_duration_seconds",
            "HTTP request latency, by method, route template and status code.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.review_latency = Histogram(
            "streetwatch_review_latency_seconds",
            "Time from a case's creation to its review decision.",
            ["decision"],
            buckets=_REVIEW_BUCKETS,
            registry=self.registry,
        )
        self.case_posts = Counter(
            "streetwatch_case_posts",
            "Case posts accepted, by outcome: created, merged or replayed.",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "streetwatch_webhook_deliveries",
            "Events sent to webhook receivers by this process, by webhook id and outcome: ok or failed.",
            ["webhook", "outcome"],
            registry=self.registry,
        )
        self.registry.register(CaseCountCollector(sessions))
        self.registry.register(WebhookPendingCollector(sessions))


class RequestTimer:
    """ASGI middleware that observes each HTTP request's latency under its route template, not its raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched")) if isinstance(route, BaseRoute) else "unmatched"
            self.metrics.request_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
