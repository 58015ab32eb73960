"""One camera's state after the model: its tracker and one dwell rule per zone, turning frames into draft cases."""

from __future__ import annotations

from datetime import tzinfo
from enum import Enum
from functools import partial
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from pipelines.evidence import render_evidence, render_snapshot
from pipelines.rules import DwellRule
from pipelines.tracking import CameraTracker
from streetwatch.config import CameraConfig
from streetwatch.core import Detections, DraftCase, Frame

#: Thumbnail size for comparing views: a vehicle a thirtieth of the frame wide still covers a few of its pixels.
THUMBNAIL: Final = (64, 48)
#: A thumbnail pixel whose grey level moved by more than this changed (compression noise stays below it).
PIXEL_DELTA: Final = 12
#: A view with more than this share of changed thumbnail pixels changed (3 of 3,072: a far vehicle arriving).
CHANGED_SHARE: Final = 0.001


class View(Enum):
    """How a due frame's view compares with the one the model last saw."""

    FIRST = "first"  # the model has not seen this camera yet
    CHANGED = "changed"
    STALE = "stale"  # unchanged, but the model last looked longer ago than the bound
    UNCHANGED = "unchanged"


def thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """`image` averaged down to THUMBNAIL. Halved first while it is four times as large: OpenCV's area average at
    a non-integer ratio costs about 7 ms on a 1080p frame, the halvings and the last step about 1 ms, for
    thumbnails that differ by one or two grey levels."""
    while image.shape[1] >= 4 * THUMBNAIL[0] and image.shape[0] >= 4 * THUMBNAIL[1]:
        image = np.asarray(
            cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA), np.uint8
        )
    return np.asarray(cv2.resize(image, THUMBNAIL, interpolation=cv2.INTER_AREA), np.uint8)


class ViewChange:
    """Compares a camera's view with the frame the model last saw, as small grey thumbnails.

    An unchanged view lets the camera skip the model for up to `max_skip_s` stream seconds after the model last
    ran; anything that arrives changes it, so nothing new stays unseen for longer than one sample.
    """

    def __init__(self, max_skip_s: float) -> None:
        self.max_skip_s = max_skip_s
        self._reference: npt.NDArray[np.int16] | None = None
        self._at_s = 0.0

    def compare(self, image: npt.NDArray[np.uint8], timestamp_s: float) -> View:
        """How this frame's view compares; any answer but UNCHANGED makes it the view compared against."""
        thumb = cv2.cvtColor(thumbnail(image), cv2.COLOR_BGR2GRAY).astype(np.int16)
        if self._reference is None:
            view = View.FIRST
        elif float(np.mean(np.abs(thumb - self._reference) > PIXEL_DELTA)) > CHANGED_SHARE:
            view = View.CHANGED
        elif timestamp_s - self._at_s > self.max_skip_s:
            view = View.STALE
        else:
            return View.UNCHANGED
        self._reference, self._at_s = thumb, timestamp_s
        return view


def default_grace_s(sample_every_s: float) -> float:
    """How long an object may go unseen by default: three analysed frames, and never under ten seconds."""
    return max(3 * sample_every_s, 10.0)


class CameraPipeline:
    """Tracks one camera's detections and applies every zone's rule; all of it is dropped with the camera."""

    def __init__(
        self, camera: CameraConfig, *, model_version: str, stream_id: str, tz: tzinfo, skip_unchanged_s: float
    ) -> None:
        self.camera = camera
        self.model_version = model_version
        self.tracker = CameraTracker(sample_every_s=camera.sample_every_s)
        self.view = ViewChange(skip_unchanged_s)
        self._tracked: Detections | None = None
        self._confirming = False  # the model runs once more after a change, for the tracker to confirm arrivals
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

    def needs_model(self, frame: Frame) -> bool:
        """Whether `frame` must go through the model, or its view is unchanged and the last tracks still hold.

        A new object becomes a track only when the tracker sees it a second time, so after the view changed the
        model also runs on the next due frame.
        """
        if self.view.max_skip_s <= 0:
            return True
        view = self.view.compare(frame.image, frame.timestamp_s)
        confirming, self._confirming = self._confirming, view is View.CHANGED
        return view is not View.UNCHANGED or confirming

    def process(self, frame: Frame, detections: Detections | None) -> list[DraftCase]:
        """Track, apply every zone's rule and turn each violation into a draft case with evidence.

        `detections` None carries the last tracks forward to this frame (its view has not changed).
        """
        if detections is None:
            if self._tracked is None:
                raise ValueError(f"camera {self.camera.id}: no tracks to carry forward before the model has run")
            tracked = self._tracked
        else:
            tracked = self._tracked = self.tracker.update(detections, frame.size)
        drafts = []
        for rule in self.rules:
            polygon = rule.zone.polygon
            snapshot = partial(render_snapshot, frame.image, polygon=polygon)
            for firing in rule.update(tracked, frame.timestamp_s, frame.captured_at, snapshot):
                v = firing.violation
                evidence = render_evidence(frame.image, v, polygon, firing.first_frame)
                drafts.append(DraftCase(v, (v.class_name,), self.model_version, evidence))
        return drafts
