"""Prometheus metrics of the frame pipeline, in a registry of its own (nothing global, nothing at import)."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)


class PipelineMetrics:
    """Counters and histograms of one pipeline run; `serve(port)` exposes them over HTTP."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_decoded = Counter(
            "streetwatch_frames_decoded", "Frames decoded from each camera's source.", ["camera"], registry=r
        )
        self.frames_analysed = Counter(
            "streetwatch_frames_analysed",
            "Due frames whose detections went through tracking and the zone rules, per camera.",
            ["camera"],
            registry=r,
        )
        self.frames_unchanged = Counter(
            "streetwatch_frames_unchanged",
            "Due frames whose view had not changed since the camera's last model run: tracks carried forward, "
            "no model run.",
            ["camera"],
            registry=r,
        )
        self.frames_dropped = Counter(
            "streetwatch_frames_dropped",
            "Due frames of live cameras dropped because the model fell behind (oldest first).",
            ["camera"],
            registry=r,
        )
        self.model_latency = Histogram(
            "streetwatch_model_latency_seconds",
            "Time the model took for one batch.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "streetwatch_batch_size", "Frames per model batch.", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.cases_raised = Counter(
            "streetwatch_cases_raised", "Draft cases raised, per camera and type.", ["camera", "type"], registry=r
        )
        self.cases_delivered = Counter(
            "streetwatch_cases_delivered", "Cases the case service acknowledged.", registry=r
        )
        self.cases_rejected = Counter(
            "streetwatch_cases_rejected", "Cases the case service refused for good (4xx).", registry=r
        )
        self.outbox_depth = Gauge("streetwatch_outbox_depth", "Cases waiting in the outbox for delivery.", registry=r)
        self.source_reconnects = Counter(
            "streetwatch_source_reconnects", "Times a live source was reopened, per camera.", ["camera"], registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve /metrics on host:port (port 0: any free port) until the returned server is closed."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        log.info("pipeline metrics at http://%s:%d/metrics", host, server.server_port)
        return MetricsServer(server, thread)


class MetricsServer:
    """A running metrics endpoint."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
