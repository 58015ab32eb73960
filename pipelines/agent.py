"""A camera agent: the pipeline wired to the outbox, the case service, the metrics endpoint and the signals, and the
camera's second look at the cases a department has handled."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from pipelines.delivery import CaseClient, DeliveryError
from pipelines.metrics import PipelineMetrics
from pipelines.outbox import Outbox, OutboxSender
from pipelines.runner import BatchDetector, Pipeline, RunStats, utc_now
from pipelines.verify import VerificationPoller, VerificationWatcher
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Detections, Frame

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT or SIGTERM sets `stop` (the batch in progress finishes, the outbox is flushed); a second one
    of either ends the process at once."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.warning("%s: finishing the current batch and flushing the outbox", signal.Signals(signum).name)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What a run did, what it left in the outbox, and why delivery stopped early if it did."""

    stats: RunStats
    left: int
    """Cases still in the outbox (the next start, or `streetwatch outbox --flush`, sends them)."""
    delivery_failure: DeliveryError | None
    """AgentRefusedError when the service refused the key; another DeliveryError when it never answered."""


def run_agent(
    config: StreetwatchConfig,
    *,
    detector: BatchDetector,
    api_url: str,
    api_key: str,
    outbox_path: Path,
    stop: threading.Event,
    metrics_port: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    on_frame: Callable[[Frame], object] | None = None,
) -> AgentOutcome:
    """Run the cameras of `config` and deliver their cases through the outbox to the case API at `api_url`.

    Cases an earlier run left in the outbox are sent first. When the cameras end (files) or `stop` is set,
    delivery goes on for up to `pipeline.flush_timeout_s`. When the service refuses the key, or has not answered
    once within `pipeline.service_timeout_s`, the cameras stop at once and the cases stay in the outbox.

    Every `pipeline.verify_poll_s` the agent asks for the handled cases of its cameras and watches their spots; what
    a camera sees there goes through the same outbox (`clock` tells when a case's deadline has passed).
    """
    settings = config.pipeline
    metrics = PipelineMetrics()
    port = metrics_port if metrics_port is not None else settings.metrics_port
    server = metrics.serve(port, settings.metrics_host) if port is not None else None
    outbox = Outbox(outbox_path)
    client = CaseClient(api_url, api_key)
    sender = OutboxSender(
        outbox,
        client,
        metrics=metrics,
        backoff_max_s=settings.delivery_backoff_max_s,
        answer_within_s=settings.service_timeout_s,
        on_failure=stop.set,
    )
    watcher = VerificationWatcher(config, clock=clock)
    poller = VerificationPoller(client, watcher, [cam.id for cam in config.cameras], settings.verify_poll_s)

    def look(frame: Frame, detections: Detections | None) -> None:
        for verification in watcher.observe(frame, detections):
            sender.submit_verification(verification)

    try:
        sender.start()
        poller.start()
        pipeline = Pipeline(
            config,
            detector=detector,
            deliver=sender.submit,
            metrics=metrics,
            clock=clock,
            on_frame=on_frame,
            on_detections=look,
        )
        stats = pipeline.run(stop)
    finally:
        poller.close()
        left = sender.close(settings.flush_timeout_s)
        client.close()
        outbox.close()
        if server is not None:
            server.close()
    return AgentOutcome(stats, left, sender.failure)


def flush_outbox(
    outbox_path: Path, *, api_url: str, api_key: str, timeout_s: float
) -> tuple[int, DeliveryError | None]:
    """Deliver what waits in the outbox at `outbox_path` to the case API, for at most `timeout_s`.

    Returns how many cases are still waiting and, when delivery stopped early, why (as in
    `AgentOutcome.delivery_failure`).
    """
    outbox = Outbox(outbox_path)
    client = CaseClient(api_url, api_key)
    sender = OutboxSender(outbox, client, metrics=PipelineMetrics(), answer_within_s=timeout_s)
    try:
        sender.start()
        left = sender.close(timeout_s)
    finally:
        client.close()
        outbox.close()
    return left, sender.failure
