"""A camera agent: the pipeline wired to the outbox, the case service, the metrics endpoint and the signals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType

from pipelines.delivery import CaseClient
from pipelines.metrics import PipelineMetrics
from pipelines.outbox import Outbox, OutboxSender
from pipelines.runner import BatchDetector, Pipeline, RunStats, utc_now
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Frame

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
) -> tuple[RunStats, int]:
    """Run the cameras of `config` and deliver their cases through the outbox to the case API at `api_url`.

    Cases an earlier run left in the outbox are sent first. When the cameras end (files) or `stop` is set,
    delivery goes on for up to `pipeline.flush_timeout_s`. Returns the run's stats and how many cases are
    still in the outbox (sent on the next start).
    """
    settings = config.pipeline
    metrics = PipelineMetrics()
    port = metrics_port if metrics_port is not None else settings.metrics_port
    server = metrics.serve(port, settings.metrics_host) if port is not None else None
    outbox = Outbox(outbox_path)
    client = CaseClient(api_url, api_key)
    sender = OutboxSender(outbox, client, metrics=metrics, backoff_max_s=settings.delivery_backoff_max_s)
    try:
        sender.start()
        pipeline = Pipeline(
            config, detector=detector, deliver=sender.submit, metrics=metrics, clock=clock, on_frame=on_frame
        )
        stats = pipeline.run(stop)
    finally:
        left = sender.close(settings.flush_timeout_s)
        client.close()
        outbox.close()
        if server is not None:
            server.close()
    return stats, left
