"""One camera's state after the model: its tracker and one dwell rule per zone, turning frames into draft cases."""

from __future__ import annotations

from datetime import tzinfo
from functools import partial

from pipelines.evidence import render_evidence, render_snapshot
from pipelines.rules import DwellRule
from pipelines.tracking import CameraTracker
from streetwatch.config import CameraConfig
from streetwatch.core import Detections, DraftCase, Frame


def default_grace_s(sample_every_s: float) -> float:
    """How long an object may go unseen by default: three analysed frames, and never under ten seconds."""
    return max(3 * sample_every_s, 10.0)


class CameraPipeline:
    """Tracks one camera's detections and applies every zone's rule; all of it is dropped with the camera."""

    def __init__(self, camera: CameraConfig, *, model_version: str, stream_id: str, tz: tzinfo) -> None:
        self.camera = camera
        self.model_version = model_version
        self.tracker = CameraTracker(sample_every_s=camera.sample_every_s)
        self.rules = [
            DwellRule(
                camera.id,
                zone,
                grace_s=zone.grace_s if zone.grace_s is not None else default_grace_s(camera.sample_every_s),
                stream_id=stream_id,
                permitted=camera.permitted,
                tz=tz,
            )
            for zone in camera.zones
        ]

    def process(self, frame: Frame, detections: Detections) -> list[DraftCase]:
        """Track, apply every zone's rule and turn each violation into a draft case with evidence."""
        tracked = self.tracker.update(detections, frame.size)
        drafts = []
        for rule in self.rules:
            polygon = rule.zone.polygon
            snapshot = partial(render_snapshot, frame.image, polygon=polygon)
            for firing in rule.update(tracked, frame.timestamp_s, frame.captured_at, snapshot):
                v = firing.violation
                evidence = render_evidence(frame.image, v, polygon, firing.first_frame)
                drafts.append(DraftCase(v, (v.class_name,), self.model_version, evidence))
        return drafts
