"""Zone + dwell rules: an object of a watched class that stays inside a zone long enough becomes a violation.

All timing is in stream seconds taken from the frames, never frame counts or the wall clock; the frame's wall
time (`captured_at`) is read only for a zone's allowed hours.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from typing import Final

import numpy as np
import numpy.typing as npt

from detector.taxonomy import ADS, LITTER, VEHICLES, VENDING
from pipelines.zones import Polygon, bottom_centre, centre, containment, expand, intersection
from service.schemas import Box, box_iou
from streetwatch.config import ZONE_CASE_TYPE, ZoneConfig, ZoneKind
from streetwatch.core import Detections, Violation

log = logging.getLogger(__name__)

Anchor = Callable[[npt.NDArray[np.floating]], npt.NDArray[np.float64]]
#: Renders the current frame with one object's box drawn, as JPEG bytes: the evidence of when a stay began.
Snapshot = Callable[[Box], bytes]

#: What a person in a no_vending zone must stand next to for the rule to count them as "staying with goods".
#: The taxonomy has no goods class; wares laid out on a pavement (crates, boxes, a cloth of items) are what
#: the model calls `sidewalk_clutter`. A person beside a `street_stall` is not counted: the stall is watched
#: on its own and raises the case.
GOODS: Final = frozenset({"sidewalk_clutter"})

#: Two boxes of one class overlapping at least this much are the same spot: a new track id there continues
#: the stay (a track-id switch or a re-found object), and a spot whose violation ended is kept quiet.
SAME_SPOT_IOU: Final = 0.5
#: An ad box lying at least this share inside a permitted region is that permitted ad (containment, not IoU:
#: a region may be drawn around a whole facade sign whose detected box is smaller).
PERMITTED_CONTAINMENT: Final = 0.7


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a zone kind watches: which classes and which point of their box must be inside the zone."""

    classes: frozenset[str]
    anchor: Anchor
    accompanied: frozenset[str] = frozenset()
    """Classes that count only when next to one of `companions` in the same frame (a person with goods)."""
    companions: frozenset[str] = frozenset()

    def watched(self, names: Sequence[str], boxes: Sequence[Box]) -> list[bool]:
        """Which objects of one frame this kind watches: its classes, and an accompanied class next to a companion."""
        goods = [box for name, box in zip(names, boxes, strict=True) if name in self.companions]
        return [
            name in self.classes or (name in self.accompanied and any(_near(box, g) for g in goods))
            for name, box in zip(names, boxes, strict=True)
        ]


RULE_SPECS: Final[dict[ZoneKind, RuleSpec]] = {
    ZoneKind.NO_PARKING: RuleSpec(VEHICLES, bottom_centre),
    ZoneKind.NO_VENDING: RuleSpec(VENDING, bottom_centre, accompanied=frozenset({"person"}), companions=GOODS),
    ZoneKind.LITTER_WATCH: RuleSpec(LITTER, centre),
    ZoneKind.AD_CONTROL: RuleSpec(ADS, centre),
}


@dataclass(frozen=True, slots=True)
class Firing:
    """A violation that fired at this frame, with the frame from when its object was first seen (JPEG)."""

    violation: Violation
    first_frame: bytes | None


@dataclass(frozen=True, slots=True)
class _Sighting:
    """One watched, tracked object inside the zone at the current frame."""

    track: int
    class_name: str
    anchor: tuple[float, float]
    xyxy: Box
    confidence: float


@dataclass(slots=True)
class _Stay:
    """One object's stay at one spot of the zone, under one or more track ids."""

    first_track: int
    class_name: str
    first_seen_s: float
    first_seen_at: datetime
    origin: tuple[float, float]
    origin_size: float
    last_seen_s: float
    xyxy: Box
    confidence: float
    first_frame: bytes | None
    tracks: set[int] = field(default_factory=set)
    reported: bool = False


@dataclass(frozen=True, slots=True)
class _QuietSpot:
    """Where a violation ended: no new case there until `until_s`."""

    xyxy: Box
    until_s: float


def violation_key(
    camera_id: str, zone_id: str, case_type: str, stream_id: str, track_id: int, first_seen_s: float
) -> str:
    """A stable id for one violation: the same stay in the same stream always yields the same key.

    `stream_id` tells streams apart whose clocks both start at zero: a file and its identity, or a live
    camera and the moment this process first opened it.
    """
    raw = f"{camera_id}|{zone_id}|{case_type}|{stream_id}|{track_id}|{first_seen_s:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def within_hours(local: time, ranges: Sequence[tuple[time, time]]) -> bool:
    """Whether a local time of day falls in one of the [start, end) ranges; end < start spans midnight."""
    for start, end in ranges:
        if start < end:
            if start <= local < end:
                return True
        elif local >= start or local < end:
            return True
    return False


def _near(person: Box, goods: Box) -> bool:
    """Goods within one body width to the side, or half a body height above or below, of the person."""
    width, height = person[2] - person[0], person[3] - person[1]
    return intersection(expand(person, width, height / 2), goods) > 0.0


class DwellRule:
    """Raises one violation when an object of the zone's classes stays inside, stationary, for `dwell_s`.

    A stay is one object at one spot. It survives track-id switches and short occlusions: an object unseen
    for up to `grace_s` keeps its stay, and a track id new to the zone, of the same class, overlapping the
    stay's last box (IoU >= SAME_SPOT_IOU) takes it over. An object whose anchor drifts from where it stopped by
    more than the zone's stationary tolerance — the absolute one, or `stationary_box_share` of the object's box
    size when that is larger, since a near object's box jitters more — leaves its stay and starts a new one where
    it now is. After a reported stay ends, no
    new case is raised at that spot for `quiet_s`; while a reported stay lasts, none is raised over it either.

    State is kept only for stays inside the zone and for quiet spots, and is dropped when they end.
    """

    def __init__(
        self,
        camera_id: str,
        zone: ZoneConfig,
        *,
        grace_s: float,
        stream_id: str = "",
        permitted: Sequence[Box] = (),
        tz: tzinfo = UTC,
    ) -> None:
        self.camera_id = camera_id
        self.zone = zone
        self.spec = RULE_SPECS[zone.kind]
        self.case_type = ZONE_CASE_TYPE[zone.kind]
        self.dwell_s = zone.effective_dwell_s
        self.tolerance = zone.effective_stationary_tolerance
        self.box_share = zone.stationary_box_share
        self.grace_s = grace_s
        self.stream_id = stream_id
        self._permitted = tuple(permitted) if zone.kind is ZoneKind.AD_CONTROL else ()
        self._hours = zone.allowed_times
        self._tz = tz
        self._polygon = Polygon(zone.polygon)
        self._stays: list[_Stay] = []
        self._by_track: dict[int, _Stay] = {}
        self._quiet: list[_QuietSpot] = []

    @property
    def tracked(self) -> int:
        """How many stays the rule currently remembers."""
        return len(self._stays)

    @property
    def remembered(self) -> int:
        """Everything the rule holds: stays, the track ids that point at them, and quiet spots."""
        return len(self._stays) + len(self._by_track) + len(self._quiet)

    def update(
        self, detections: Detections, timestamp_s: float, captured_at: datetime, snapshot: Snapshot | None = None
    ) -> list[Firing]:
        """Feed one analysed frame's tracked detections; returns the violations that fire at this frame.

        `snapshot` renders the current frame for a stay that begins here (evidence of when it was first seen).
        """
        self._expire(timestamp_s)
        if self._hours and within_hours(captured_at.astimezone(self._tz).time(), self._hours):
            # Vending is allowed now: time spent here does not count towards a case.
            for ended in list(self._stays):
                self._end(ended, "within the zone's allowed hours")
            return []
        seen: list[_Stay] = []
        unmatched: list[_Sighting] = []
        for sighting in self._sightings(detections):
            known = self._by_track.get(sighting.track)
            if (
                known is not None
                and not any(s is known for s in seen)
                and not self._moved(known, sighting, log_it=True)
            ):
                self._extend(known, sighting, timestamp_s)
                seen.append(known)
            else:
                unmatched.append(sighting)
        # Known tracks first, so that a re-found id keeps its own stay before a new id may take one over. Only a
        # track new to the zone may continue another's stay (a switched id); a known one that moved is an object
        # arriving at a spot, however much its box overlaps a stay that just went unseen there.
        for sighting in unmatched:
            stay = None if sighting.track in self._by_track else self._reassociate(sighting, seen)
            if stay is None:
                stay = self._start(sighting, timestamp_s, captured_at, snapshot)
            else:
                self._extend(stay, sighting, timestamp_s)
            seen.append(stay)
        fired = []
        for stay in seen:
            if stay.reported:
                continue
            if timestamp_s - stay.first_seen_s < self.dwell_s:
                if timestamp_s > stay.first_seen_s:
                    log.debug(
                        "%s #%d: %.0f of %.0f s",
                        self._where(stay),
                        stay.first_track,
                        timestamp_s - stay.first_seen_s,
                        self.dwell_s,
                    )
                continue
            if self._quiet_at(stay, timestamp_s):
                log.debug(
                    "%s #%d: no case, one at the same spot is open or ended less than %.0f s ago",
                    self._where(stay),
                    stay.first_track,
                    self.zone.quiet_s,
                )
                continue
            stay.reported = True
            fired.append(Firing(self._violation(stay, timestamp_s, captured_at), stay.first_frame))
        return fired

    def _sightings(self, detections: Detections) -> list[_Sighting]:
        if not len(detections):
            return []
        names = detections.names
        anchors = self.spec.anchor(detections.xyxy)
        inside = self._polygon.contains(anchors)
        boxes: list[Box] = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in detections.xyxy.tolist()]
        watched = self.spec.watched(names, boxes)
        out = []
        for i, name in enumerate(names):
            track = int(detections.tracker_id[i])
            if track < 0 or not inside[i]:
                continue
            if not watched[i] or any(containment(boxes[i], p) >= PERMITTED_CONTAINMENT for p in self._permitted):
                continue
            anchor = (float(anchors[i, 0]), float(anchors[i, 1]))
            out.append(_Sighting(track, name, anchor, boxes[i], float(detections.confidence[i])))
        return out

    def _where(self, stay: _Stay) -> str:
        return f"camera {self.camera_id} zone {self.zone.id}: {stay.class_name}"

    def _tolerance(self, *sizes: float) -> float:
        """How far an object whose box measures `sizes` (the longer side, normalised) may drift and still stay."""
        return max(self.tolerance, self.box_share * max(sizes, default=0.0))

    def _moved(self, stay: _Stay, sighting: _Sighting, *, log_it: bool = False) -> bool:
        drift = float(np.hypot(sighting.anchor[0] - stay.origin[0], sighting.anchor[1] - stay.origin[1]))
        tolerance = self._tolerance(stay.origin_size, _size(sighting.xyxy))
        if drift <= tolerance:
            return False
        if log_it:
            log.debug(
                "%s #%d moved %.3f from where it stopped, beyond the tolerance %.3f "
                "(stationary_tolerance %.3f, or stationary_box_share %.2f of its box): a new stay begins",
                self._where(stay),
                sighting.track,
                drift,
                tolerance,
                self.tolerance,
                self.box_share,
            )
        return True

    def _reassociate(self, sighting: _Sighting, seen: list[_Stay]) -> _Stay | None:
        """The unseen stay of the same class at the same spot that this new track id continues."""
        best, best_iou = None, SAME_SPOT_IOU
        for stay in self._stays:
            if stay.class_name != sighting.class_name or any(s is stay for s in seen):
                continue
            iou = box_iou(stay.xyxy, sighting.xyxy)
            if iou >= best_iou and not self._moved(stay, sighting):
                best, best_iou = stay, iou
        if best is not None:
            best.tracks.add(sighting.track)
            self._by_track[sighting.track] = best
        return best

    def _start(
        self, sighting: _Sighting, timestamp_s: float, captured_at: datetime, snapshot: Snapshot | None
    ) -> _Stay:
        self._release_track(sighting.track)
        stay = _Stay(
            first_track=sighting.track,
            class_name=sighting.class_name,
            first_seen_s=timestamp_s,
            first_seen_at=captured_at,
            origin=sighting.anchor,
            origin_size=_size(sighting.xyxy),
            last_seen_s=timestamp_s,
            xyxy=sighting.xyxy,
            confidence=sighting.confidence,
            first_frame=snapshot(sighting.xyxy) if snapshot is not None else None,
            tracks={sighting.track},
        )
        self._stays.append(stay)
        self._by_track[sighting.track] = stay
        log.debug(
            "%s #%d stays at (%.2f, %.2f); a case after %.0f s",
            self._where(stay),
            sighting.track,
            sighting.anchor[0],
            sighting.anchor[1],
            self.dwell_s,
        )
        return stay

    @staticmethod
    def _extend(stay: _Stay, sighting: _Sighting, timestamp_s: float) -> None:
        stay.last_seen_s = timestamp_s
        stay.xyxy = sighting.xyxy
        stay.confidence = sighting.confidence
        stay.class_name = sighting.class_name

    def _release_track(self, track: int) -> None:
        """Detach a track from the stay it belonged to (it moved away); a stay left without tracks ends."""
        old = self._by_track.pop(track, None)
        if old is None:
            return
        old.tracks.discard(track)
        if not old.tracks:
            self._end(old, "it moved away")

    def _expire(self, timestamp_s: float) -> None:
        for stay in [s for s in self._stays if timestamp_s - s.last_seen_s > self.grace_s]:
            self._end(stay, f"unseen in the zone for more than {self.grace_s:.0f} s (grace_s)")
        self._quiet = [q for q in self._quiet if q.until_s > timestamp_s]

    def _end(self, stay: _Stay, why: str) -> None:
        self._stays.remove(stay)
        lasted = stay.last_seen_s - stay.first_seen_s
        if stay.reported:
            log.debug("%s #%d: the violation ended after %.0f s: %s", self._where(stay), stay.first_track, lasted, why)
        else:
            log.debug(
                "%s #%d: stay dropped after %.0f of %.0f s: %s",
                self._where(stay),
                stay.first_track,
                lasted,
                self.dwell_s,
                why,
            )
        for track in stay.tracks:
            if self._by_track.get(track) is stay:
                del self._by_track[track]
        if stay.reported and self.zone.quiet_s > 0:
            self._quiet.append(_QuietSpot(stay.xyxy, stay.last_seen_s + self.zone.quiet_s))

    def _quiet_at(self, stay: _Stay, timestamp_s: float) -> bool:
        """Whether a case at this stay's spot would repeat one that is open or ended less than `quiet_s` ago."""
        if any(q.until_s > timestamp_s and box_iou(q.xyxy, stay.xyxy) >= SAME_SPOT_IOU for q in self._quiet):
            return True
        return any(
            other.reported and other is not stay and box_iou(other.xyxy, stay.xyxy) >= SAME_SPOT_IOU
            for other in self._stays
        )

    def _violation(self, stay: _Stay, timestamp_s: float, captured_at: datetime) -> Violation:
        key = violation_key(
            self.camera_id, self.zone.id, self.case_type.value, self.stream_id, stay.first_track, stay.first_seen_s
        )
        return Violation(
            key=key,
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


def _size(xyxy: Box) -> float:
    """A box's longer side."""
    return max(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1])
