"""Scripted detections for the rule tests: tiny helpers that build real `Detections` and drive a real rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from detector.taxonomy import TAXONOMY
from pipelines.rules import DwellRule
from streetwatch.core import Detections, Violation

Box = tuple[float, float, float, float]
Script = list[tuple[float, Detections]]

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
LOWER_HALF = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
PARKED: Box = (0.40, 0.60, 0.60, 0.80)  # bottom centre (0.5, 0.8): inside the lower half
OUTSIDE: Box = (0.40, 0.10, 0.60, 0.30)  # bottom centre (0.5, 0.3): outside


def dets(*objects: tuple[int, str, Box]) -> Detections:
    """Tracked detections from (track id, class name, box) triples."""
    return Detections(
        xyxy=np.array([o[2] for o in objects], np.float32).reshape(-1, 4),
        confidence=np.full(len(objects), 0.9, np.float32),
        class_id=np.array([TAXONOMY.index(o[1]) for o in objects], np.int64),
        tracker_id=np.array([o[0] for o in objects], np.int64),
        class_names=TAXONOMY,
    )


def shifted(box: Box, dx: float, dy: float = 0.0) -> Box:
    """The box moved by (dx, dy)."""
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def every(seconds: float, until: float, make: Callable[[float], Detections], start: float = 0.0) -> Script:
    """One analysed frame every `seconds` of stream time from `start` to `until`, inclusive."""
    n = round((until - start) / seconds)
    return [(start + i * seconds, make(start + i * seconds)) for i in range(n + 1)]


def fire_times(rule: DwellRule, script: Script, t0: datetime = T0) -> list[float]:
    """Feed (stream time, detections) pairs; returns the stream times at which violations fired."""
    return [v.detected_s for v in violations(rule, script, t0)]


def violations(rule: DwellRule, script: Script, t0: datetime = T0) -> list[Violation]:
    """Feed (stream time, detections) pairs, the wall time being `t0` plus the stream time; every violation."""
    out = []
    for t, d in script:
        out += [f.violation for f in rule.update(d, t, t0 + timedelta(seconds=t))]
    return out
