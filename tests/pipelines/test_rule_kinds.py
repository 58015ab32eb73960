"""The other three zone kinds driven by scripted detections: vending (with allowed hours), litter and ads."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from rule_helpers import LOWER_HALF, OUTSIDE, PARKED, Box, Script, dets, every, fire_times, shifted

from pipelines.rules import DwellRule
from streetwatch.config import ZoneConfig, ZoneKind

STALL: Box = (0.30, 0.55, 0.50, 0.85)
PERSON: Box = (0.55, 0.50, 0.62, 0.85)  # standing just right of the goods
GOODS: Box = (0.64, 0.75, 0.80, 0.86)  # wares on the pavement, less than a body width away
FAR_GOODS: Box = (0.05, 0.75, 0.20, 0.86)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def rule(kind: ZoneKind, dwell_s: float = 30.0, *, permitted: list[Box] | None = None, **zone: object) -> DwellRule:
    config = ZoneConfig.model_validate(
        {"id": "z", "kind": kind, "polygon": LOWER_HALF, "dwell_s": dwell_s, "quiet_s": 600} | zone
    )
    return DwellRule("cam-1", config, grace_s=10.0, permitted=permitted or [], tz=SHANGHAI)


def stays(*objects: tuple[int, str, Box], until: float = 60) -> Script:
    """The same objects in every frame, every 2 s from 0 to `until`."""
    return every(2, until, lambda t: dets(*objects))


VENDING = [
    ("a stall stays: one case", stays((1, "street_stall", STALL)), [30.0]),
    ("a stall stays too briefly: none", stays((1, "street_stall", STALL), until=20), []),
    ("a stall outside the zone: none", stays((1, "street_stall", OUTSIDE)), []),
    (
        "a stall carried through: none",
        every(2, 60, lambda t: dets((1, "street_stall", shifted(STALL, -0.3 + 0.02 * t)))),
        [],
    ),
    ("a person alone stays: none", stays((1, "person", PERSON)), []),
    ("a person staying next to goods: one case", stays((1, "person", PERSON), (2, "sidewalk_clutter", GOODS)), [30.0]),
    (
        "a person beside goods across the street: none",
        stays((1, "person", PERSON), (2, "sidewalk_clutter", FAR_GOODS)),
        [],
    ),
    (
        "goods missed for a frame or two: still one case",
        every(
            2, 60, lambda t: dets((1, "person", PERSON), *([] if 20 <= t <= 26 else [(2, "sidewalk_clutter", GOODS)]))
        ),
        [30.0],
    ),
    (
        "people walking past goods: none",
        every(2, 60, lambda t: dets((1, "person", shifted(PERSON, -0.5 + 0.01 * t)), (2, "sidewalk_clutter", GOODS))),
        [],
    ),
    (
        "a person at a stall: the stall's case only",
        stays((1, "street_stall", STALL), (2, "person", shifted(STALL, 0.22))),
        [30.0],
    ),
    ("goods alone are litter's business, not vending's: none", stays((2, "sidewalk_clutter", GOODS)), []),
]


@pytest.mark.parametrize(("name", "script", "expected"), VENDING, ids=[c[0] for c in VENDING])
def test_no_vending_rule(name: str, script: Script, expected: list[float]) -> None:
    assert fire_times(rule(ZoneKind.NO_VENDING), script) == expected


def local(hh: int, mm: int, ss: int = 0) -> datetime:
    """A wall time in Shanghai on the test day."""
    return datetime(2026, 11, 27, hh, mm, ss, tzinfo=SHANGHAI)


HOURS = [
    ("inside the night-market hours: none", [("18:00", "23:00")], local(19, 0), 120, []),
    ("outside the hours: one case", [("18:00", "23:00")], local(12, 0), 120, [30.0]),
    ("the stall stays past closing: dwell counts from closing", [("18:00", "23:00")], local(22, 59, 30), 120, [60.0]),
    ("the market opens during the stay: none", [("18:00", "23:00")], local(17, 59, 40), 120, []),
    ("hours spanning midnight, at 01:00: none", [("22:00", "02:00")], local(1, 0), 120, []),
    ("hours spanning midnight, at 03:00: one case", [("22:00", "02:00")], local(3, 0), 120, [30.0]),
    ("two ranges, in the second: none", [("06:00", "09:00"), ("18:00", "23:00")], local(20, 0), 120, []),
    # 11:00 UTC is 19:00 in Shanghai: hours are read in the configured zone, not in UTC.
    ("UTC midday is Shanghai evening: none", [("18:00", "23:00")], datetime(2026, 11, 27, 11, 0, tzinfo=UTC), 120, []),
]


@pytest.mark.parametrize(("name", "hours", "start", "until", "expected"), HOURS, ids=[c[0] for c in HOURS])
def test_allowed_hours(
    name: str, hours: list[tuple[str, str]], start: datetime, until: float, expected: list[float]
) -> None:
    vending = rule(ZoneKind.NO_VENDING, allowed_hours=[list(h) for h in hours])
    assert fire_times(vending, stays((1, "street_stall", STALL), until=until), t0=start) == expected


def test_allowed_hours_release_the_stays() -> None:
    vending = rule(ZoneKind.NO_VENDING, allowed_hours=[["18:00", "23:00"]])
    fire_times(vending, stays((1, "street_stall", STALL), (2, "street_stall", PARKED), until=10), t0=local(17, 59, 50))
    assert vending.remembered == 0


LITTER = [
    ("garbage stays: one case", stays((1, "garbage", PARKED)), [30.0]),
    ("an overflowing bin stays: one case", stays((1, "bin_overflow", PARKED)), [30.0]),
    ("cluttered sidewalk stays: one case", stays((1, "sidewalk_clutter", PARKED)), [30.0]),
    ("a tidy bin is no litter: none", stays((1, "garbage_bin", PARKED)), []),
    ("garbage outside the zone: none", stays((1, "garbage", OUTSIDE)), []),
    ("garbage cleared before dwell: none", stays((1, "garbage", PARKED), until=20), []),
    (
        "a heap whose track id flickers: one case",
        every(2, 60, lambda t: dets((1 + int(t // 6), "garbage", PARKED))),
        [30.0],
    ),
    ("two heaps: two cases", stays((1, "garbage", PARKED), (2, "garbage", shifted(PARKED, 0.3))), [30.0, 30.0]),
]


@pytest.mark.parametrize(("name", "script", "expected"), LITTER, ids=[c[0] for c in LITTER])
def test_litter_watch_rule(name: str, script: Script, expected: list[float]) -> None:
    assert fire_times(rule(ZoneKind.LITTER_WATCH), script) == expected


AD: Box = (0.20, 0.60, 0.40, 0.70)
ADS = [
    ("an ad with no permitted region: one case", [], stays((1, "billboard", AD)), [30.0]),
    ("an ad inside a permitted region: none", [(0.15, 0.55, 0.45, 0.75)], stays((1, "billboard", AD)), []),
    ("an ad exactly on its permitted region: none", [AD], stays((1, "signboard", AD)), []),
    ("an ad 80 % inside a permitted region: none", [(0.24, 0.55, 0.45, 0.75)], stays((1, "signboard", AD)), []),
    ("an ad half inside a permitted region: one case", [(0.30, 0.55, 0.45, 0.75)], stays((1, "poster", AD)), [30.0]),
    ("a permitted region elsewhere: one case", [(0.60, 0.55, 0.90, 0.75)], stays((1, "poster", AD)), [30.0]),
    (
        "graffiti beside a permitted sign: one case",
        [AD],
        stays((1, "signboard", AD), (2, "graffiti", shifted(AD, 0.4))),
        [30.0],
    ),
    ("a car is no ad: none", [], stays((1, "car", AD)), []),
]


@pytest.mark.parametrize(("name", "permitted", "script", "expected"), ADS, ids=[c[0] for c in ADS])
def test_ad_control_rule(name: str, permitted: list[Box], script: Script, expected: list[float]) -> None:
    assert fire_times(rule(ZoneKind.AD_CONTROL, permitted=permitted), script) == expected


def test_permitted_regions_only_excuse_ads() -> None:
    parking = rule(ZoneKind.NO_PARKING, permitted=[(0.0, 0.0, 1.0, 1.0)])
    assert fire_times(parking, stays((1, "car", PARKED))) == [30.0]
