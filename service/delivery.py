"""The webhook worker: sends each webhook's events from the case event log, in order, signed, retrying with
backoff; one per service process, started and stopped by the app's lifespan."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeVar

import anyio
import httpx
from anyio.to_thread import run_sync
from sqlalchemy.orm import Session, sessionmaker

from service import webhooks
from service.metrics import Metrics
from service.settings import ServiceSettings
from service.signing import SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT: Final = "streetwatch-webhooks/1"
#: Database calls the worker makes at once, each in a thread and on a connection of the worker's own pool.
DB_THREADS: Final = 2
#: How long past the receiver's timeout a lease lasts: room for recording the result and for clocks of service
#: processes that disagree a little. A process that dies mid-send holds its webhooks back this long.
LEASE_MARGIN_S: Final = 60.0
#: While the database keeps failing the worker's look for events, how often it says so again (the first failure
#: is logged at once, with its traceback; recovery is logged too).
OUTAGE_REPEAT_S: Final = 60.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookWorker:
    """Delivers the events of every active webhook until stopped.

    Each webhook is drained by a task of its own: its events go one at a time, in log order, and a receiver that
    is down or slow holds back only its own events. A failed event is tried again after `webhook_retry_base_s`,
    doubling per failure up to `webhook_retry_max_s`, and the events after it wait for it.
    """

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        sessions: sessionmaker[Session],
        metrics: Metrics,
        clock: Callable[[], datetime] = _utc_now,
        outage_repeat_s: float = OUTAGE_REPEAT_S,
    ) -> None:
        """
        Args:
            settings: timeouts and retry delays (`webhook_*`).
            sessions: sessions on a pool of its own (`DB_THREADS` connections), apart from the requests' pool.
            metrics: where deliveries are counted.
            clock: wall time for leases and retry times, compared across service processes.
            outage_repeat_s: how often a database that keeps failing is logged again.
        """
        self._settings = settings
        self._sessions = sessions
        self._metrics = metrics
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(DB_THREADS)
        self._busy: set[int] = set()
        self._outage = _Outage(outage_repeat_s)

    async def run(self, stop: anyio.Event) -> None:
        """Deliver until `stop` is set; sends under way then are abandoned and their events sent again later."""
        timeout = httpx.Timeout(self._settings.webhook_timeout_s)
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        async with (
            httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=False, trust_env=False) as client,
            anyio.create_task_group() as tasks,
        ):
            while not stop.is_set():
                try:
                    due = await self._db(webhooks.due_webhooks, now=self._clock())
                except Exception as exc:
                    self._outage.failed(exc)
                    due = []
                else:
                    self._outage.ended()
                for webhook_id in due:
                    if webhook_id not in self._busy:
                        self._busy.add(webhook_id)
                        tasks.start_soon(self._drain, client, webhook_id)
                with anyio.move_on_after(self._settings.webhook_poll_s):
                    await stop.wait()
            tasks.cancel_scope.cancel()

    async def _db(self, call: Callable[..., T], **kwargs: object) -> T:
        def in_thread() -> T:
            with self._sessions() as session:
                return call(session=session, **kwargs)

        return await run_sync(in_thread, limiter=self._limiter)

    async def _drain(self, client: httpx.AsyncClient, webhook_id: int) -> None:
        """Send the webhook's waiting events until none is left or one fails."""
        lease_s = self._settings.webhook_timeout_s + LEASE_MARGIN_S
        try:
            while True:
                delivery = await self._db(
                    webhooks.claim_next, webhook_id=webhook_id, now=self._clock(), lease_s=lease_s
                )
                if delivery is None or not await self._send(client, delivery):
                    return
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:
            # Caught here so that one webhook's trouble never stops the others; its lease runs out and it is retried.
            log.exception("webhooks: delivery to webhook %d failed unexpectedly", webhook_id)
        finally:
            self._busy.discard(webhook_id)

    async def _send(self, client: httpx.AsyncClient, delivery: webhooks.Delivery) -> bool:
        """POST one event and record the outcome; True when the receiver took it."""
        headers = {
            "X-Streetwatch-Event-Id": delivery.event_id,
            "X-Streetwatch-Event": delivery.kind,
            "X-Streetwatch-Timestamp": str(int(self._clock().timestamp())),
            SIGNATURE_HEADER: sign(delivery.secret, delivery.body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self._settings.webhook_timeout_s:g} s"
        except httpx.ConnectError as exc:
            error = f"cannot connect: {_root_cause(exc)}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._db(webhooks.release, delivery=delivery)
            raise
        else:
            status = response.status_code
            if not response.is_success:
                error = f"HTTP {status}: {response.text[:200]}".rstrip(": ")
        ok = error is None
        self._metrics.webhook_deliveries.labels(str(delivery.webhook_id), "ok" if ok else "failed").inc()
        if not ok:
            log.warning(
                "webhooks: %s to webhook %d failed (attempt %d): %s",
                delivery.kind,
                delivery.webhook_id,
                delivery.attempt,
                error,
            )
        held = await self._db(
            webhooks.record_result,
            delivery=delivery,
            now=self._clock(),
            status=status,
            error=error,
            retry_base_s=self._settings.webhook_retry_base_s,
            retry_max_s=self._settings.webhook_retry_max_s,
        )
        if not held:
            log.warning(
                "webhooks: webhook %d was deleted or its lease ran out while event %s was sent; it may come again",
                delivery.webhook_id,
                delivery.event_id,
            )
        return ok and held


class _Outage:
    """Logs a database that fails the worker's every poll once, then every `repeat_s` while it lasts, and its end,
    instead of a traceback per poll (one a second by default)."""

    def __init__(self, repeat_s: float) -> None:
        self._repeat_s = repeat_s
        self._since: float | None = None
        self._said_at = 0.0
        self._failures = 0

    def failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._failures += 1
        if self._since is None:
            self._since = self._said_at = now
            log.warning("webhooks: cannot look for events to deliver", exc_info=exc)
        elif now - self._said_at >= self._repeat_s:
            self._said_at = now
            log.warning(
                "webhooks: still cannot look for events to deliver (%d tries in %.0f s): %s",
                self._failures,
                now - self._since,
                exc,
            )

    def ended(self) -> None:
        if self._since is not None:
            log.info(
                "webhooks: events can be looked for again after %.0f s (%d failed tries)",
                time.monotonic() - self._since,
                self._failures,
            )
            self._since, self._failures = None, 0


def _root_cause(exc: BaseException) -> str:
    """What the operating system said, under the layers of HTTP clients ("connection refused" rather than "All
    connection attempts failed")."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__
