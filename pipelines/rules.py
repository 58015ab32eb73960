"""Zone + dwell rules: an object of a watched class that stays inside a zone long enough becomes a violation.

All timing is in stream seconds taken from the frames, never frame counts or the wall clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from detector.taxonomy import ADS, LITTER, VEHICLES, VENDING
from pipelines.zones import Polygon, bottom_centre, centre
from streetwatch.config import ZONE_CASE_TYPE, ZoneConfig, ZoneKind
from streetwatch.core import Detections, Violation

Anchor = Callable[[npt.NDArray[np.floating]], npt.NDArray[np.float64]]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a zone kind watches: which classes, which point of the box must be inside, how still it must be."""

    classes: frozenset[str]
    anchor: Anchor
    stationary_tolerance: float | None
    """Largest drift of the anchor (normalised units) that still counts as staying put; None: no check."""


RULE_SPECS: Final[dict[ZoneKind, RuleSpec]] = {
    ZoneKind.NO_PARKING: RuleSpec(VEHICLES, bottom_centre, 0.03),
    ZoneKind.NO_VENDING: RuleSpec(VENDING, bottom_centre, 0.05),
    ZoneKind.LITTER_WATCH: RuleSpec(LITTER, centre, 0.05),
    ZoneKind.AD_CONTROL: RuleSpec(ADS, centre, 0.05),
}


@dataclass(slots=True)
class _Presence:
    """One track's stay inside the zone."""

    first_seen_s: float
    first_seen_at: datetime
    last_seen_s: float
    origin: tuple[float, float]
    class_name: str
    xyxy: tuple[float, float, float, float]
    confidence: float
    reported: bool = False


def violation_key(camera_id: str, zone_id: str, case_type: str, track_id: int, first_seen_s: float) -> str:
    """A stable id for one violation: the same stay in the same stream always yields the same key."""
    raw = f"{camera_id}|{zone_id}|{case_type}|{track_id}|{first_seen_s:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class DwellRule:
    """Raises one violation when a tracked object of the zone's classes stays inside for `dwell_s`.

    A track unseen for more than `grace_s` (occlusion, missed detections) ends its stay; a track whose anchor
    drifts beyond the rule's tolerance restarts its stay where it now is. State is kept only for tracks
    inside the zone and is dropped when they leave or go unseen.
    """

    def __init__(self, camera_id: str, zone: ZoneConfig, *, grace_s: float) -> None:
        self.camera_id = camera_id
        self.zone = zone
        self.spec = RULE_SPECS[zone.kind]
        self.case_type = ZONE_CASE_TYPE[zone.kind]
        self.dwell_s = zone.effective_dwell_s
        self.grace_s = grace_s
        self._polygon = Polygon(zone.polygon)
        self._present: dict[int, _Presence] = {}

    @property
    def tracked(self) -> int:
        """How many stays the rule currently remembers."""
        return len(self._present)

    def update(self, detections: Detections, timestamp_s: float, captured_at: datetime) -> list[Violation]:
        """Feed one analysed frame's tracked detections; returns the violations that fire at this frame."""
        names = detections.names
        watched = np.array([n in self.spec.classes for n in names], dtype=bool).reshape(-1)
        tracked = detections.tracker_id >= 0
        anchors = self.spec.anchor(detections.xyxy)
        inside = self._polygon.contains(anchors) if len(detections) else np.zeros(0, bool)
        for tid in [t for t, s in self._present.items() if timestamp_s - s.last_seen_s > self.grace_s]:
            del self._present[tid]
        fired = []
        for i in np.flatnonzero(watched & tracked & inside):
            tid = int(detections.tracker_id[i])
            anchor = (float(anchors[i, 0]), float(anchors[i, 1]))
            box = tuple(float(v) for v in detections.xyxy[i])
            stay = self._present.get(tid)
            if stay is None or self._moved(stay.origin, anchor):
                stay = _Presence(timestamp_s, captured_at, timestamp_s, anchor, names[i], box, 0.0)  # type: ignore[arg-type]
                self._present[tid] = stay
            stay.last_seen_s = timestamp_s
            stay.xyxy = box  # type: ignore[assignment]
            stay.confidence = float(detections.confidence[i])
            stay.class_name = names[i]
            if not stay.reported and timestamp_s - stay.first_seen_s >= self.dwell_s:
                stay.reported = True
                fired.append(self._violation(tid, stay, timestamp_s, captured_at))
        return fired

    def _moved(self, origin: tuple[float, float], anchor: tuple[float, float]) -> bool:
        tol = self.spec.stationary_tolerance
        return tol is not None and float(np.hypot(anchor[0] - origin[0], anchor[1] - origin[1])) > tol

    def _violation(self, tid: int, stay: _Presence, timestamp_s: float, captured_at: datetime) -> Violation:
        return Violation(
            key=violation_key(self.camera_id, self.zone.id, self.case_type.value, tid, stay.first_seen_s),
            camera_id=self.camera_id,
            zone_id=self.zone.id,
            type=self.case_type,
            class_name=stay.class_name,
            xyxy=stay.xyxy,
            confidence=stay.confidence,
            first_seen_s=stay.first_seen_s,
            detected_s=timestamp_s,
            first_seen_at=stay.first_seen_at,
            detected_at=captured_at,
        )
