"""The core concepts that flow between pipeline stages: frames, detections, tracks, hits, violations, drafts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from service.schemas import CaseType

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of a camera, stamped with its stream time and the wall time it stands for."""

    camera_id: str
    timestamp_s: float
    captured_at: datetime
    image: npt.NDArray[np.uint8] = field(repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Detections:
    """Objects found in one frame, as parallel arrays; boxes are [x1, y1, x2, y2] normalised to [0, 1].

    `tracker_id` holds -1 for objects not (yet) tracked.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    tracker_id: IntArray
    class_names: tuple[str, ...]

    @classmethod
    def empty(cls, class_names: tuple[str, ...]) -> Detections:
        """No objects."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
            tracker_id=np.zeros(0, np.int64),
            class_names=class_names,
        )

    def __len__(self) -> int:
        return int(self.class_id.shape[0])

    @property
    def names(self) -> list[str]:
        """The class name of each object."""
        return [self.class_names[i] for i in self.class_id.tolist()]

    def filter(self, mask: npt.NDArray[np.bool_]) -> Detections:
        """The objects where `mask` is true."""
        return Detections(
            xyxy=self.xyxy[mask],
            confidence=self.confidence[mask],
            class_id=self.class_id[mask],
            tracker_id=self.tracker_id[mask],
            class_names=self.class_names,
        )


@dataclass(frozen=True, slots=True)
class Track:
    """One tracked object at its latest sighting."""

    track_id: int
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    first_seen_s: float
    last_seen_s: float


@dataclass(frozen=True, slots=True)
class ZoneHit:
    """An object of a watched class whose anchor lies inside a zone, at one analysed frame."""

    camera_id: str
    zone_id: str
    track_id: int
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule that fired: an object stayed in a zone past its dwell time.

    `key` is stable for the violation (camera, zone, type and when it started), so a retry or a restart
    never creates a second case for it.
    """

    key: str
    camera_id: str
    zone_id: str
    type: CaseType
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    first_seen_s: float
    detected_s: float
    first_seen_at: datetime
    detected_at: datetime


@dataclass(frozen=True, slots=True)
class EvidenceImage:
    """One encoded evidence image."""

    name: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DraftCase:
    """A violation with its evidence, ready for the case service."""

    violation: Violation
    labels: tuple[str, ...]
    model_version: str
    evidence: tuple[EvidenceImage, ...]
