"""`GET /api/v1/kpis` reports the day of `kpi_helpers` as computed by hand, per grid, department and type."""

from __future__ import annotations

from typing import Any

import pytest
from case_helpers import Clock, bearer
from conftest import TEST_DEPARTMENT
from fastapi.testclient import TestClient
from kpi_helpers import DISPATCHER, EAST, G1, G2, NOW, WEST, Day, build_day, make_grid_map

from service.admin import open_database
from service.schemas import CaseType, Decision, LoopAction, Role
from service.settings import ServiceSettings

DAY = {"since": "2025-05-01T10:00:00+00:00", "until": "2025-05-02T10:00:00+00:00"}
#: cam-1/zone-a: A, B, C and H confirmed (D was rejected) within 30 days before the period's end.
HOT_ALL = [
    {
        "camera_id": "cam-1",
        "zone_id": "zone-a",
        "type": "illegal_parking",
        "cases": 4,
        "last_detected_at": "2025-05-01T12:00:00Z",
    }
]


def kpi(
    key: str | None,
    name: str | None,
    *,
    found: int = 0,
    reviewed: int = 0,
    confirmed: int = 0,
    confirmed_rate: float | None = None,
    filed: int = 0,
    closed: int = 0,
    median_closure_s: float | None = None,
    handled: int = 0,
    handled_on_time: int = 0,
    on_time_rate: float | None = None,
    overdue: int = 0,
    hot_spots: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One group as the API should report it; every number is written out by hand in the tests."""
    return {
        "key": key,
        "name": name,
        "found": found,
        "reviewed": reviewed,
        "confirmed": confirmed,
        "confirmed_rate": confirmed_rate,
        "filed": filed,
        "closed": closed,
        "median_closure_s": median_closure_s,
        "handled": handled,
        "handled_on_time": handled_on_time,
        "on_time_rate": on_time_rate,
        "overdue": overdue,
        "hot_spots": hot_spots or [],
    }


#: A+B+C+D: 3 of 4 confirmed; A (3 h 10 = 11400 s) and B (4 h 10 = 15000 s) closed; A on time, B late; C overdue.
PARKING = {
    "found": 4,
    "reviewed": 4,
    "confirmed": 3,
    "confirmed_rate": 0.75,
    "filed": 3,
    "closed": 2,
    "median_closure_s": 13200.0,
    "handled": 2,
    "handled_on_time": 1,
    "on_time_rate": 0.5,
    "overdue": 1,
}
#: E+F: F undecided; E's handling was undone by the failed verification and its new deadline is still ahead.
VENDING = {"found": 2, "reviewed": 1, "confirmed": 1, "confirmed_rate": 1.0, "filed": 1}
#: G: closed 2 h after it was first seen, handled on time.
LITTER = {
    "found": 1,
    "reviewed": 1,
    "confirmed": 1,
    "confirmed_rate": 1.0,
    "filed": 1,
    "closed": 1,
    "median_closure_s": 7200.0,
    "handled": 1,
    "handled_on_time": 1,
    "on_time_rate": 1.0,
}


@pytest.fixture
def day(client: TestClient, settings: ServiceSettings, keys: dict[Role, str], clock: Clock) -> dict[str, int]:
    with open_database(settings) as sessions:
        ids = build_day(sessions)
    clock.now = NOW
    return ids


def _kpis(client: TestClient, key: str, **params: str | int) -> dict[str, Any]:
    response = client.get("/api/v1/kpis", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_the_totals_of_the_day(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    report = _kpis(client, keys[Role.DISPATCHER], **DAY)
    assert (report["group_by"], report["repeat_n"], report["repeat_days"]) == ("none", 3, 30)
    assert report["now"] == "2025-05-01T16:00:00Z"
    assert report["groups"] == [
        kpi(
            None,
            None,
            found=7,
            reviewed=6,
            confirmed=5,
            confirmed_rate=5 / 6,
            filed=5,
            closed=3,
            median_closure_s=11400.0,  # of 11400, 15000 and 7200
            handled=3,
            handled_on_time=2,
            on_time_rate=2 / 3,
            overdue=1,
            hot_spots=HOT_ALL,
        )
    ]


def test_per_grid(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    report = _kpis(client, keys[Role.REVIEWER], group_by="grid", **DAY)
    assert report["groups"] == [
        kpi(G1, "Tianhe 001", **PARKING, hot_spots=HOT_ALL),  # H is in G1 too
        kpi(G2, "Tianhe 002", **VENDING),
        kpi(None, None, **LITTER),  # cam-3's zone is in no grid
    ]


def test_per_department(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    report = _kpis(client, keys[Role.ADMIN], group_by="department", **DAY)
    east_spot = [HOT_ALL[0] | {"cases": 3}]  # H was never dispatched
    assert report["groups"] == [
        kpi(
            EAST,
            "Sanitation East",
            found=3,
            reviewed=3,
            confirmed=3,
            confirmed_rate=1.0,
            filed=3,
            closed=2,
            median_closure_s=13200.0,
            handled=2,
            handled_on_time=1,
            on_time_rate=0.5,
            overdue=1,
            hot_spots=east_spot,
        ),
        kpi(
            WEST,
            "Sanitation West",
            found=2,
            reviewed=2,
            confirmed=2,
            confirmed_rate=1.0,
            filed=2,
            closed=1,
            median_closure_s=7200.0,
            handled=1,
            handled_on_time=1,
            on_time_rate=1.0,
        ),
        kpi(TEST_DEPARTMENT, "Test department"),  # listed without cases, so a chart shows it at zero
        kpi(None, None, found=2, reviewed=1, confirmed=0, confirmed_rate=0.0),  # D rejected, F undecided
    ]


def test_per_type(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    report = _kpis(client, keys[Role.DISPATCHER], group_by="type", **DAY)
    assert report["groups"] == [
        kpi("street_vending", None, **VENDING),
        kpi("piled_litter", None, **LITTER),
        kpi("illegal_parking", None, **PARKING, hot_spots=HOT_ALL),
        kpi("unpermitted_ad", None),
    ]


def test_filters_narrow_every_count(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    key = keys[Role.DISPATCHER]
    assert _kpis(client, key, type="street_vending", **DAY)["groups"] == [kpi(None, None, **VENDING)]
    assert _kpis(client, key, camera_id="cam-3", **DAY)["groups"] == [kpi(None, None, **LITTER)]
    by_grid = _kpis(client, key, group_by="grid", grid_id=G2, **DAY)["groups"]
    assert by_grid == [kpi(G2, "Tianhe 002", **VENDING)]
    east = _kpis(client, key, department_id=EAST, **DAY)["groups"][0]
    assert (east["found"], east["closed"], east["overdue"]) == (3, 2, 1)


def test_the_period_is_on_detection_time(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    key = keys[Role.DISPATCHER]
    # [T0 + 1 h, T0 + 2 h 30) holds B and C: B closed after 4 h 10 min, C overdue.
    report = _kpis(client, key, since="2025-05-01T11:00:00Z", until="2025-05-01T12:30:00Z")
    (totals,) = report["groups"]
    assert (totals["found"], totals["closed"], totals["median_closure_s"], totals["overdue"]) == (2, 1, 15000.0, 1)
    # Without a period every case counts, H too.
    assert _kpis(client, key)["groups"][0]["found"] == 8


def test_overdue_follows_the_service_clock(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], clock: Clock
) -> None:
    key = keys[Role.DISPATCHER]
    clock.now = NOW.replace(hour=13, minute=59)  # a minute before C's deadline (T0 + 4 h)
    assert _kpis(client, key, **DAY)["groups"][0]["overdue"] == 0
    clock.now = NOW.replace(hour=18, minute=1)  # past E's new deadline (T0 + 8 h) as well
    assert _kpis(client, key, **DAY)["groups"][0]["overdue"] == 2


def test_hot_spots_take_n_cases_in_m_days(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    key = keys[Role.DISPATCHER]
    # One day before the period's end leaves A, B and C (H was two days earlier): still three.
    spots = _kpis(client, key, repeat_days=1, **DAY)["groups"][0]["hot_spots"]
    assert spots == [HOT_ALL[0] | {"cases": 3}]
    assert _kpis(client, key, repeat_n=5, **DAY)["groups"][0]["hot_spots"] == []
    assert _kpis(client, key, repeat_n=4, **DAY)["groups"][0]["hot_spots"] == HOT_ALL
    # Without `until` the window ends at the service's clock.
    assert _kpis(client, key, repeat_days=1)["groups"][0]["hot_spots"] == [HOT_ALL[0] | {"cases": 3}]


def test_an_empty_database_reports_zeros(client: TestClient, keys: dict[Role, str]) -> None:
    assert _kpis(client, keys[Role.REVIEWER])["groups"] == [kpi(None, None)]
    by_type = _kpis(client, keys[Role.REVIEWER], group_by="type")["groups"]
    assert [g["key"] for g in by_type] == ["street_vending", "piled_litter", "illegal_parking", "unpermitted_ad"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2025-05-02T00:00:00Z", "until": "2025-05-01T00:00:00Z"}, "query.until"),
        ({"since": "2025-05-01T00:00:00Z", "until": "2025-05-01T00:00:00Z"}, "query.until"),
        ({"since": "2025-05-01T00:00:00"}, "query.since"),  # no zone
        ({"group_by": "camera"}, "query.group_by"),
        ({"type": "graffiti"}, "query.type"),
        ({"repeat_n": "1"}, "query.repeat_n"),
        ({"repeat_days": "0"}, "query.repeat_days"),
        ({"grid_id": "no spaces"}, "query.grid_id"),
    ],
)
def test_bad_queries_name_the_parameter(
    client: TestClient, keys: dict[Role, str], params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/kpis", params=params, headers=bearer(keys[Role.DISPATCHER]))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(("role", "code"), [(Role.AGENT, 403), (Role.DEPARTMENT, 403), (None, 401)])
def test_agents_and_departments_read_no_kpis(
    client: TestClient, keys: dict[Role, str], role: Role | None, code: int
) -> None:
    headers = {} if role is None else bearer(keys[role])
    response = client.get("/api/v1/kpis", headers=headers)
    assert response.status_code == code
    assert response.json()["detail"]


def test_handled_at_the_deadline_is_on_time_and_a_deadline_reached_is_not_overdue(
    client: TestClient, settings: ServiceSettings, keys: dict[Role, str], clock: Clock
) -> None:
    with open_database(settings) as sessions:
        make_grid_map(sessions)
        day = Day(sessions)
        on_the_dot = day.case("cam-1", "zone-a", CaseType.ILLEGAL_PARKING, 0, -0.1)
        waiting = day.case("cam-1", "zone-a", CaseType.ILLEGAL_PARKING, 0.5, 0.4)
        for case_id in (on_the_dot, waiting):
            day.review(case_id, Decision.CONFIRM, 1)
            day.act(case_id, LoopAction.FILE, DISPATCHER, 1)  # to east, deadline T0 + 3 h
        day.act(on_the_dot, LoopAction.HANDLE, DISPATCHER, 3, note="towed")
    clock.now = Day.at(3)  # `waiting`'s deadline, reached but not passed
    (totals,) = _kpis(client, keys[Role.DISPATCHER])["groups"]
    assert (totals["handled"], totals["handled_on_time"], totals["on_time_rate"], totals["overdue"]) == (1, 1, 1.0, 0)
    clock.advance(1)
    assert _kpis(client, keys[Role.DISPATCHER])["groups"][0]["overdue"] == 1
