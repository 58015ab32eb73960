"""The frame pipeline: read every camera, batch due frames through the model, apply zone rules, deliver cases."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from detector.model import Detector
from pipelines.evidence import render_evidence
from pipelines.rules import DwellRule
from pipelines.sources import SourceError, VideoSource
from pipelines.tracking import CameraTracker
from streetwatch.config import CameraConfig, StreetwatchConfig
from streetwatch.core import Detections, DraftCase, Frame

log = logging.getLogger(__name__)

#: Frames buffered per camera between its reader and the model; a full buffer holds the reader back.
QUEUE_FRAMES = 4
_END = None


def utc_now() -> datetime:
    """The default wall clock."""
    return datetime.now(UTC)


class CameraPipeline:
    """One camera's state after the model: its tracker and one rule per zone."""

    def __init__(self, camera: CameraConfig, *, model_version: str) -> None:
        self.camera = camera
        self.model_version = model_version
        self.tracker = CameraTracker(sample_every_s=camera.sample_every_s)
        grace_s = max(3 * camera.sample_every_s, 10.0)
        self.rules = [DwellRule(camera.id, zone, grace_s=grace_s) for zone in camera.zones]

    def process(self, frame: Frame, detections: Detections) -> list[DraftCase]:
        """Track, apply every zone's rule and turn each violation into a draft case with evidence."""
        tracked = self.tracker.update(detections, frame.size)
        drafts = []
        for rule in self.rules:
            for violation in rule.update(tracked, frame.timestamp_s, frame.captured_at):
                evidence = render_evidence(frame.image, violation, rule.zone.polygon)
                drafts.append(DraftCase(violation, (violation.class_name,), self.model_version, evidence))
        return drafts


@dataclass
class RunStats:
    """What a run did, per camera."""

    frames_analysed: dict[str, int] = field(default_factory=dict)
    cases_raised: dict[str, int] = field(default_factory=dict)
    failed_cameras: dict[str, str] = field(default_factory=dict)


def _read(source: VideoSource, out: queue.Queue[Frame | None], stop: threading.Event, stats: RunStats) -> None:
    cam = source.camera.id
    try:
        for frame in source.frames():
            while not stop.is_set():
                try:
                    out.put(frame, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
    except SourceError as exc:
        stats.failed_cameras[cam] = str(exc)
        log.error("camera %s: %s", cam, exc)
    finally:
        out.put(_END)


def run_pipeline(
    config: StreetwatchConfig,
    *,
    detector: Detector,
    deliver: Callable[[DraftCase], object],
    stop: threading.Event,
    clock: Callable[[], datetime] = utc_now,
) -> RunStats:
    """Run every camera until its source ends (files) or `stop` is set; returns per-camera stats.

    Each camera is read by its own thread into a small queue, so a slow or failing source never stalls
    the others; the frames that are ready together go through the model as one batch.
    """
    stats = RunStats()
    queues: dict[str, queue.Queue[Frame | None]] = {}
    pipes: dict[str, CameraPipeline] = {}
    threads = []
    for cam in config.cameras:
        queues[cam.id] = queue.Queue(maxsize=QUEUE_FRAMES)
        pipes[cam.id] = CameraPipeline(cam, model_version=detector.info.version)
        stats.frames_analysed[cam.id] = 0
        stats.cases_raised[cam.id] = 0
        t = threading.Thread(
            target=_read, args=(VideoSource(cam, clock=clock), queues[cam.id], stop, stats), name=f"src-{cam.id}"
        )
        t.start()
        threads.append(t)
    active = set(queues)
    try:
        while active and not stop.is_set():
            batch: list[Frame] = []
            for cam_id in sorted(active):
                try:
                    item = queues[cam_id].get(timeout=0.05 if batch else 0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    active.discard(cam_id)
                    pipes.pop(cam_id)
                    log.info("camera %s: source ended", cam_id)
                elif item is not None:
                    batch.append(item)
            if not batch:
                continue
            for frame, dets in zip(batch, detector.detect([f.image for f in batch]), strict=True):
                stats.frames_analysed[frame.camera_id] += 1
                for draft in pipes[frame.camera_id].process(frame, dets):
                    deliver(draft)
                    stats.cases_raised[frame.camera_id] += 1
                    log.info(
                        "camera %s: %s in zone %s (%s)",
                        frame.camera_id,
                        draft.violation.type.value,
                        draft.violation.zone_id,
                        draft.violation.key,
                    )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
    return stats
