"""Zone + dwell rules driven by scripted detections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detector.taxonomy import TAXONOMY
from pipelines.rules import DwellRule
from streetwatch.config import ZoneConfig, ZoneKind
from streetwatch.core import Detections

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
ZONE = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]  # lower half of the frame
PARKED = (0.40, 0.60, 0.60, 0.80)  # bottom centre (0.5, 0.8): inside
OUTSIDE = (0.40, 0.10, 0.60, 0.30)  # bottom centre (0.5, 0.3): outside


def dets(*objects: tuple[int, str, tuple[float, float, float, float]]) -> Detections:
    """Tracked detections from (track id, class name, box) triples."""
    return Detections(
        xyxy=np.array([o[2] for o in objects], np.float32).reshape(-1, 4),
        confidence=np.full(len(objects), 0.9, np.float32),
        class_id=np.array([TAXONOMY.index(o[1]) for o in objects], np.int64),
        tracker_id=np.array([o[0] for o in objects], np.int64),
        class_names=TAXONOMY,
    )


def shifted(box: tuple[float, float, float, float], dx: float) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def drive(rule: DwellRule, script: list[tuple[float, Detections]]) -> list[float]:
    """Feed (stream time, detections) pairs; returns the stream times at which violations fired."""
    fired = []
    for t, d in script:
        fired += [t for _ in rule.update(d, t, T0 + timedelta(seconds=t))]
    return fired


def every(seconds: float, until: float, make: object, start: float = 0.0) -> list[tuple[float, Detections]]:
    assert callable(make)
    n = round((until - start) / seconds)
    return [(start + i * seconds, make(start + i * seconds)) for i in range(n + 1)]


def parking_rule(dwell_s: float = 30.0) -> DwellRule:
    zone = ZoneConfig(id="kerb", kind=ZoneKind.NO_PARKING, polygon=ZONE, dwell_s=dwell_s)
    return DwellRule("cam-1", zone, grace_s=10.0)


CASES = [
    ("parked longer than dwell: one case", every(2, 60, lambda t: dets((1, "car", PARKED))), [30.0]),
    ("parked shorter than dwell: none", every(2, 28, lambda t: dets((1, "car", PARKED))), []),
    ("passes through the zone: none", every(2, 60, lambda t: dets((1, "car", shifted(PARKED, -0.4 + t * 0.02)))), []),
    ("outside the zone: none", every(2, 60, lambda t: dets((1, "car", OUTSIDE))), []),
    ("a person is no vehicle: none", every(2, 60, lambda t: dets((1, "person", PARKED))), []),
    ("untracked detections: none", every(2, 60, lambda t: dets((-1, "car", PARKED))), []),
    (
        "two parked cars: two cases",
        every(2, 60, lambda t: dets((1, "car", PARKED), (2, "truck", shifted(PARKED, 0.3)))),
        [30.0, 30.0],
    ),
    (
        "short occlusion inside grace: still one case",
        every(2, 10, lambda t: dets((1, "car", PARKED))) + every(2, 60, lambda t: dets((1, "car", PARKED)), start=16),
        [30.0],
    ),
    (
        "gone longer than grace: dwell restarts",
        every(2, 20, lambda t: dets((1, "car", PARKED))) + every(2, 70, lambda t: dets((1, "car", PARKED)), start=40),
        [70.0],
    ),
    (
        "moves within the zone: dwell restarts at the new spot",
        every(2, 20, lambda t: dets((1, "car", PARKED)))
        + every(2, 60, lambda t: dets((1, "car", shifted(PARKED, 0.2))), start=22),
        [52.0],
    ),
]


@pytest.mark.parametrize(("name", "script", "expected"), CASES, ids=[c[0] for c in CASES])
def test_no_parking_rule(name: str, script: list[tuple[float, Detections]], expected: list[float]) -> None:
    assert drive(parking_rule(), script) == expected


def test_violation_carries_what_the_case_needs() -> None:
    rule = parking_rule(dwell_s=10)
    fired = []
    for t in range(0, 14, 2):
        fired += rule.update(dets((7, "bus", PARKED)), float(t), T0 + timedelta(seconds=t))
    (v,) = fired
    assert (v.camera_id, v.zone_id, v.type.value, v.class_name) == ("cam-1", "kerb", "illegal_parking", "bus")
    assert v.first_seen_at == T0 and v.detected_at == T0 + timedelta(seconds=10)
    assert v.xyxy == pytest.approx(PARKED)


def test_key_is_stable_for_the_same_stay_and_differs_for_another() -> None:
    def keys() -> list[str]:
        rule = parking_rule(dwell_s=4)
        script = every(2, 10, lambda t: dets((1, "car", PARKED))) + every(
            2, 40, lambda t: dets((1, "car", PARKED)), start=30
        )
        return [v.key for t, d in script for v in rule.update(d, t, T0 + timedelta(seconds=t))]

    first, second = keys(), keys()
    assert first == second and len(first) == 2 and first[0] != first[1]


def test_state_is_released_when_tracks_go_away() -> None:
    rule = parking_rule()
    drive(rule, every(2, 20, lambda t: dets(*((i, "car", shifted(PARKED, 0.01 * i)) for i in range(1, 6)))))
    assert rule.tracked == 5
    drive(rule, every(2, 50, lambda t: dets(), start=22))
    assert rule.tracked == 0
