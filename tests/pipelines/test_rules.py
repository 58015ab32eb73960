"""Zone + dwell rules driven by scripted detections: no_parking, stays across occlusions and track-id switches,
the quiet period, violation keys and the release of state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from rule_helpers import LOWER_HALF, OUTSIDE, PARKED, T0, Box, Script, dets, every, fire_times, shifted, violations

from pipelines.rules import DwellRule
from streetwatch.config import ZoneConfig, ZoneKind


def parking_rule(
    dwell_s: float = 30.0, *, quiet_s: float = 600.0, grace_s: float = 10.0, box_share: float | None = None
) -> DwellRule:
    shares = {} if box_share is None else {"stationary_box_share": box_share}
    zone = ZoneConfig(
        id="kerb", kind=ZoneKind.NO_PARKING, polygon=LOWER_HALF, dwell_s=dwell_s, quiet_s=quiet_s, **shares
    )
    return DwellRule("cam-1", zone, grace_s=grace_s, stream_id="file:kerb.mp4")


def car(track: int, box: tuple[float, float, float, float] = PARKED, name: str = "car") -> Script:
    """A vehicle parked at `box` from 0 to 60 s, sampled every 2 s, under one track id."""
    return every(2, 60, lambda t: dets((track, name, box)))


PARKING = [
    ("parked longer than dwell: one case", car(1), [30.0]),
    ("parked shorter than dwell: none", every(2, 28, lambda t: dets((1, "car", PARKED))), []),
    ("passes through the zone: none", every(2, 60, lambda t: dets((1, "car", shifted(PARKED, -0.4 + t * 0.02)))), []),
    ("outside the zone: none", every(2, 60, lambda t: dets((1, "car", OUTSIDE))), []),
    ("a person is no vehicle: none", car(1, name="person"), []),
    ("untracked detections: none", car(-1), []),
    ("a parked bus: one case", car(4, name="bus"), [30.0]),
    ("a parked motorcycle: one case", car(4, name="motorcycle"), [30.0]),
    (
        "two parked cars: two cases",
        every(2, 60, lambda t: dets((1, "car", PARKED), (2, "truck", shifted(PARKED, 0.3)))),
        [30.0, 30.0],
    ),
    (
        "drifts within the tolerance (jittery boxes): one case",
        every(2, 60, lambda t: dets((1, "car", shifted(PARKED, 0.01 if int(t) % 4 else -0.01, 0.01)))),
        [30.0],
    ),
    (
        "moves within the zone: dwell restarts at the new spot",
        every(2, 20, lambda t: dets((1, "car", PARKED)))
        + every(2, 60, lambda t: dets((1, "car", shifted(PARKED, 0.2))), start=22),
        [52.0],
    ),
]


@pytest.mark.parametrize(("name", "script", "expected"), PARKING, ids=[c[0] for c in PARKING])
def test_no_parking_rule(name: str, script: Script, expected: list[float]) -> None:
    assert fire_times(parking_rule(), script) == expected


#: A car parked near the camera (a third of the frame wide) and one far away (a twentieth).
NEAR: Box = (0.30, 0.55, 0.62, 0.85)
FAR: Box = (0.48, 0.60, 0.53, 0.63)


def jitter(box: Box, amount: float) -> Callable[[float], Box]:
    """The box of a standing object as a detector returns it: it jumps up to `amount` from where it stopped."""
    steps = [(0.0, 0.0), (amount, 0.0), (0.0, amount / 2), (-amount, 0.0)]
    return lambda t: shifted(box, *steps[round(t / 2) % len(steps)])


JITTER = [
    (
        "a near car whose box jitters 7 % of the frame: one case",
        0.5,
        every(2, 60, lambda t: dets((1, "car", jitter(NEAR, 0.07)(t)))),
        [30.0],
    ),
    (
        "the same without box-relative tolerance: dropped, none",
        0.0,
        every(2, 60, lambda t: dets((1, "car", jitter(NEAR, 0.07)(t)))),
        [],
    ),
    (
        "a far car moving 7 % of the frame is moving: none",
        0.5,
        every(2, 60, lambda t: dets((1, "car", jitter(FAR, 0.07)(t)))),
        [],
    ),
    (
        "a far car's small jitter is within the absolute tolerance: one case",
        0.5,
        every(2, 60, lambda t: dets((1, "car", jitter(FAR, 0.02)(t)))),
        [30.0],
    ),
    (
        "a near car that moves more than half its size: dwell restarts",
        0.5,
        every(2, 20, lambda t: dets((1, "car", NEAR)))
        + every(2, 60, lambda t: dets((1, "car", shifted(NEAR, 0.2))), start=22),
        [52.0],
    ),
]


@pytest.mark.parametrize(("name", "share", "script", "expected"), JITTER, ids=[c[0] for c in JITTER])
def test_stationary_tolerance_follows_the_box_size(
    name: str, share: float, script: Script, expected: list[float]
) -> None:
    assert fire_times(parking_rule(box_share=share), script) == expected


def test_the_debug_log_says_why_a_stay_was_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pipelines.rules")
    script = every(2, 60, lambda t: dets((1, "car", jitter(NEAR, 0.07)(t))))
    assert fire_times(parking_rule(box_share=0.0), script) == []
    lines = [r.getMessage() for r in caplog.records]
    assert "camera cam-1 zone kerb: car #1 stays at (0.46, 0.85); a case after 30 s" in lines
    moved = [line for line in lines if "moved" in line]
    assert moved and "beyond the tolerance 0.030 (stationary_tolerance 0.030, or stationary_box_share 0.00" in moved[0]
    assert any("stay dropped after" in line and "it moved away" in line for line in lines)


def new_id_every(seconds: float, box: tuple[float, float, float, float] = PARKED) -> Script:
    """One parked car whose track id changes every `seconds` (the tracker lost and re-found it)."""
    return every(2, 60, lambda t: dets((1 + int(t // seconds), "car", box)))


STAYS = [
    ("track id changes every 10 s: one case", new_id_every(10), [30.0]),
    ("track id changes on every frame: one case", new_id_every(2), [30.0]),
    (
        "new id on a slightly different box: one case",
        every(2, 20, lambda t: dets((1, "car", PARKED)))
        + every(2, 60, lambda t: dets((2, "car", shifted(PARKED, 0.015, 0.01))), start=22),
        [30.0],
    ),
    (
        "occluded for 8 s (within grace): one case",
        every(2, 10, lambda t: dets((1, "car", PARKED))) + every(2, 60, lambda t: dets((1, "car", PARKED)), start=18),
        [30.0],
    ),
    (
        "occluded for 8 s and found again under a new id: one case",
        every(2, 10, lambda t: dets((1, "car", PARKED))) + every(2, 60, lambda t: dets((7, "car", PARKED)), start=18),
        [30.0],
    ),
    (
        "gone longer than grace: dwell restarts",
        every(2, 20, lambda t: dets((1, "car", PARKED))) + every(2, 70, lambda t: dets((1, "car", PARKED)), start=40),
        [70.0],
    ),
    (
        "a new id of another class at the spot is another object: dwell restarts",
        every(2, 20, lambda t: dets((1, "car", PARKED))) + every(2, 60, lambda t: dets((2, "truck", PARKED)), start=22),
        [52.0],
    ),
    (
        "a neighbour's new id does not take over the other car's stay",
        every(2, 60, lambda t: dets((1, "car", PARKED), (2 if t < 20 else 3, "car", shifted(PARKED, 0.25)))),
        [30.0, 30.0],
    ),
    (
        "a second detection over an open case (class flicker) raises none",
        every(2, 60, lambda t: dets((1, "car", PARKED), *([(2, "truck", PARKED)] if t >= 20 else []))),
        [30.0],
    ),
]


@pytest.mark.parametrize(("name", "script", "expected"), STAYS, ids=[c[0] for c in STAYS])
def test_stays_survive_occlusions_and_id_switches(name: str, script: Script, expected: list[float]) -> None:
    assert fire_times(parking_rule(), script) == expected


def leaves_and_returns(until: float, box: tuple[float, float, float, float] = PARKED) -> Script:
    """Parked 0-20 s (a case at 10 s with dwell 10), gone 22-40 s, then parked again at `box` from 42 s."""
    return every(2, 20, lambda t: dets((1, "car", PARKED))) + every(2, until, lambda t: dets((2, "car", box)), start=42)


QUIET = [
    ("returns within the quiet period: no second case", 60, leaves_and_returns(70), [10.0]),
    ("stays on past the quiet period: a second case when it ends", 60, leaves_and_returns(100), [10.0, 80.0]),
    ("no quiet period: a second case after dwell", 0, leaves_and_returns(70), [10.0, 52.0]),
    ("another spot is not quiet", 60, leaves_and_returns(70, shifted(PARKED, 0.3)), [10.0, 52.0]),
]


@pytest.mark.parametrize(("name", "quiet_s", "script", "expected"), QUIET, ids=[c[0] for c in QUIET])
def test_quiet_period(name: str, quiet_s: float, script: Script, expected: list[float]) -> None:
    assert fire_times(parking_rule(10, quiet_s=quiet_s), script) == expected


def test_violation_carries_what_the_case_needs() -> None:
    rule = parking_rule(dwell_s=10)
    (v,) = violations(rule, every(2, 12, lambda t: dets((7, "bus", PARKED))))
    assert (v.camera_id, v.zone_id, v.type.value, v.class_name) == ("cam-1", "kerb", "illegal_parking", "bus")
    assert v.first_seen_at == T0 and v.detected_at == T0 + timedelta(seconds=10)
    assert (v.first_seen_s, v.detected_s) == (0.0, 10.0)
    assert v.xyxy == pytest.approx(PARKED)


def test_the_debug_log_follows_a_stay_to_its_case(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pipelines.rules")
    assert fire_times(parking_rule(dwell_s=4), car(1)[:5]) == [4.0]
    assert [r.getMessage() for r in caplog.records] == [
        "camera cam-1 zone kerb: car #1 stays at (0.50, 0.80); a case after 4 s",
        "camera cam-1 zone kerb: car #1: 2 of 4 s",
    ]


def test_first_sighting_is_rendered_once_when_the_stay_begins() -> None:
    rule = parking_rule(dwell_s=10)
    rendered: list[tuple[float, float, float, float]] = []

    def snapshot(box: tuple[float, float, float, float]) -> bytes:
        rendered.append(box)
        return f"frame {len(rendered)}".encode()

    firings = []
    for t, d in new_id_every(4)[:7]:
        firings += rule.update(d, t, T0 + timedelta(seconds=t), snapshot)
    (firing,) = firings
    assert firing.first_frame == b"frame 1" and len(rendered) == 1


def test_key_is_stable_for_the_same_stay_and_differs_for_another() -> None:
    script = every(2, 10, lambda t: dets((1, "car", PARKED))) + every(2, 40, lambda t: dets((1, "car", PARKED)), 30)

    def keys(stream_id: str) -> list[str]:
        zone = ZoneConfig(id="kerb", kind=ZoneKind.NO_PARKING, polygon=LOWER_HALF, dwell_s=4, quiet_s=0)
        return [v.key for v in violations(DwellRule("cam-1", zone, grace_s=10, stream_id=stream_id), script)]

    first, second = keys("file:a"), keys("file:a")
    assert first == second and len(first) == 2 and first[0] != first[1]
    # A live stream restarts its clock with every run: the run's epoch keeps its keys apart.
    assert set(keys("live:run-2")).isdisjoint(first)


def test_state_is_released_when_tracks_go_away() -> None:
    rule = parking_rule(dwell_s=10, quiet_s=30)
    five = every(2, 20, lambda t: dets(*((i, "car", shifted(PARKED, 0.08 * i - 0.3)) for i in range(1, 6))))
    assert len(fire_times(rule, five)) == 5
    assert rule.tracked == 5
    fire_times(rule, every(2, 32, lambda t: dets(), start=22))  # unseen for longer than grace (10 s)
    assert rule.tracked == 0 and rule.remembered == 5  # only the five quiet spots remain, until 20 + 30 s
    fire_times(rule, every(2, 50, lambda t: dets(), start=34))
    assert rule.remembered == 0


def test_many_passing_objects_leave_no_state_behind() -> None:
    rule = parking_rule(dwell_s=30)
    # 50 cars, one after another, each crossing the zone under its own track id in 10 s.
    traffic = every(1, 500, lambda t: dets((int(t // 10), "car", shifted(PARKED, -0.4 + (t % 10) * 0.08))))
    assert fire_times(rule, traffic) == []
    # Only the car in the zone now and the last one, which went out of sight less than grace_s ago, with their ids.
    assert rule.tracked == 2 and rule.remembered == 4
    fire_times(rule, every(1, 520, lambda t: dets(), start=501))
    assert rule.remembered == 0
