"""Dispatchers run the closed loop in the console: the dispatch view (file, dispatch by hand, close, overdue
flagged), and the KPI page with its server-drawn charts; who may do what, and forged forms."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from case_helpers import Clock, bearer
from console_helpers import csrf_of, sign_in
from fastapi.testclient import TestClient
from kpi_helpers import DISPATCHER, EAST, G1, NOW, REVIEWER, WEST, Day, build_day, make_grid_map
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.admin import open_database
from service.models import Case, CaseTransition
from service.schemas import CaseStatus, CaseType, Decision, LoopAction, Role
from service.settings import ServiceSettings

S = CaseStatus


@pytest.fixture
def sessions(settings: ServiceSettings, keys: dict[Role, str]) -> Iterator[sessionmaker[Session]]:
    with open_database(settings) as made:
        yield made


@pytest.fixture
def day(sessions: sessionmaker[Session], clock: Clock) -> dict[str, int]:
    """The day of kpi_helpers, seen at its NOW."""
    ids = build_day(sessions)
    clock.now = NOW
    return ids


def _status(sessions: sessionmaker[Session], case_id: int) -> tuple[CaseStatus, str | None, str | None]:
    with sessions() as s:
        case = s.get_one(Case, case_id)
        last = s.scalars(
            select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id.desc())
        ).first()
        return case.status, case.department_id, None if last is None else last.actor


def _rows(page: str, section: str) -> list[int]:
    found = re.search(rf'<section class="loop-section" id="section-{section}".*?</section>', page, re.S)
    assert found is not None, section
    return [int(n) for n in re.findall(r'<tr id="case-(\d+)"', found.group(0))]


def _act(client: TestClient, case_id: int, action: str, **form: str) -> tuple[int, str]:
    page = client.get("/console/dispatch").text
    response = client.post(
        f"/console/dispatch/{case_id}/{action}", data={"csrf": csrf_of(page), **form}, follow_redirects=False
    )
    return response.status_code, response.headers.get("location", response.text)


def test_a_dispatcher_signs_in_to_the_dispatch_view(client: TestClient, keys: dict[Role, str]) -> None:
    signed = sign_in(client, keys[Role.DISPATCHER])
    assert (signed.status_code, signed.headers["location"]) == (303, "/console/dispatch")
    # The review queue is not theirs: it leads them back.
    queue = client.get("/console/", follow_redirects=False)
    assert (queue.status_code, queue.headers["location"]) == (303, "/console/dispatch")
    page = client.get("/console/dispatch")
    assert page.status_code == 200
    assert "test-dispatcher (dispatcher)" in page.text
    # Titled for everyone who works here, not for reviewers only.
    assert "streetwatch · Case console</a>" in page.text and "Review console" not in page.text
    zh = client.get("/console/dispatch", headers={"Accept-Language": "zh-CN"}).text
    assert "streetwatch · 案件管理台</a>" in zh and "审核台" not in zh
    assert 'id="nav-kpis"' in page.text and 'id="nav-queue"' not in page.text


def test_a_department_key_is_refused_with_the_reason(client: TestClient, keys: dict[Role, str]) -> None:
    refused = sign_in(client, keys[Role.DEPARTMENT])
    assert refused.status_code == 403
    assert "A department key cannot sign in" in refused.text
    assert "sw_session" not in refused.headers.get("set-cookie", "")


def test_the_view_lists_the_loop_and_flags_what_is_overdue(
    client: TestClient, keys: dict[Role, str], day: dict[str, int]
) -> None:
    sign_in(client, keys[Role.DISPATCHER])
    page = client.get("/console/dispatch").text
    assert _rows(page, "confirmed") == [day["H"]]
    assert _rows(page, "filed") == []
    assert _rows(page, "dispatched") == [day["E"], day["C"]]  # oldest detection first
    assert _rows(page, "handled") == []
    assert _rows(page, "verified") == []
    # C's deadline (T0 + 4 h) has passed at T0 + 6 h; E's new one (T0 + 8 h) has not.
    assert re.search(rf'id="case-{day["C"]}" class="loop-row overdue"[^>]*data-overdue="true"', page)
    assert re.search(rf'id="case-{day["E"]}" class="loop-row"[^>]*data-overdue="false"', page)
    assert re.search(r'id="overdue-count"[^>]*>Overdue: <b>1</b>', page)


def test_a_dispatcher_files_dispatches_by_hand_and_closes(
    client: TestClient, keys: dict[Role, str], sessions: sessionmaker[Session], clock: Clock
) -> None:
    make_grid_map(sessions)
    day = Day(sessions)
    by_grid = day.case("cam-1", "zone-a", CaseType.ILLEGAL_PARKING, 0, -0.1)  # G1 sends parking to east
    by_hand = day.case("cam-2", "zone-b", CaseType.STREET_VENDING, 0.5, 0.4)  # G2 names no department
    done = day.case("cam-2", "zone-b", CaseType.STREET_VENDING, 0.6, 0.5)
    for case_id in (by_grid, by_hand, done):
        day.review(case_id, Decision.CONFIRM, 1)
    day.act(done, LoopAction.FILE, DISPATCHER, 1)
    day.act(done, LoopAction.DISPATCH, DISPATCHER, 1, department_id=WEST)
    day.act(done, LoopAction.HANDLE, DISPATCHER, 2, note="moved on")
    day.act(done, LoopAction.VERIFY_PASS, REVIEWER, 3)
    clock.now = NOW
    sign_in(client, keys[Role.DISPATCHER])
    page = client.get("/console/dispatch").text
    assert _rows(page, "confirmed") == [by_grid, by_hand]
    assert _rows(page, "verified") == [done]

    assert _act(client, by_grid, "file", priority="urgent") == (303, f"/console/dispatch#case-{by_grid}")
    assert _status(sessions, by_grid) == (S.DISPATCHED, EAST, "system")  # the grid map dispatched it at once
    assert _act(client, by_hand, "file", priority="normal")[0] == 303
    assert _status(sessions, by_hand) == (S.FILED, None, "test-dispatcher")
    assert _rows(client.get("/console/dispatch").text, "filed") == [by_hand]
    assert _act(client, by_hand, "dispatch", department_id=WEST)[0] == 303
    assert _status(sessions, by_hand) == (S.DISPATCHED, WEST, "test-dispatcher")
    assert _act(client, done, "close")[0] == 303
    assert _status(sessions, done) == (S.CLOSED, WEST, "test-dispatcher")

    page = client.get("/console/dispatch").text
    assert _rows(page, "dispatched") == [by_grid, by_hand]
    assert _rows(page, "verified") == []
    # The urgent parking case has an hour, from NOW; the vending case four.
    assert re.search(rf'id="case-{by_grid}".*?<td>Urgent</td>.*?2025-05-01 17:00', page, re.S)
    assert re.search(rf'id="case-{by_hand}".*?<td>Normal</td>.*?2025-05-01 20:00', page, re.S)


def test_a_refused_action_says_why_and_changes_nothing(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    sign_in(client, keys[Role.DISPATCHER])
    code, page = _act(client, day["A"], "close")  # closed already
    assert code == 409
    assert f"Case #{day['A']} is Closed now: Close is not possible from there." in page
    assert _status(sessions, day["A"])[0] is S.CLOSED
    more = Day(sessions)
    filed = more.case("cam-3", "zone-c", CaseType.PILED_LITTER, 5.5, 5.4)
    more.review(filed, Decision.CONFIRM, 5.6)
    more.act(filed, LoopAction.FILE, DISPATCHER, 5.6)
    code, page = _act(client, filed, "dispatch")  # no department chosen
    assert code == 422
    assert "Choose the department to dispatch the case to." in page
    code, page = _act(client, filed, "dispatch", department_id="nobody")
    assert code == 422
    assert _status(sessions, filed)[:2] == (S.FILED, None)
    assert _act(client, filed, "handle", note="x")[0] == 404  # not an action of this view
    assert _act(client, filed, "file", priority="soon")[0] == 422


def test_a_reviewer_cannot_dispatch(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    sign_in(client, keys[Role.REVIEWER])
    assert client.get("/console/dispatch", follow_redirects=False).status_code == 403
    page = client.get("/console/").text  # a page of the reviewer's, for the session's CSRF token
    assert 'id="nav-dispatch"' not in page
    refused = client.post(f"/console/dispatch/{day['H']}/file", data={"csrf": csrf_of(page), "priority": "normal"})
    assert refused.status_code == 403
    assert "dispatcher or an admin" in refused.json()["detail"]
    assert _status(sessions, day["H"])[0] is S.CONFIRMED


def test_a_dispatcher_cannot_decide_a_draft(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    sign_in(client, keys[Role.DISPATCHER])
    case_page = client.get(f"/console/cases/{day['F']}")
    assert case_page.status_code == 200  # a dispatcher may look at a case's evidence
    assert 'id="confirm-form"' not in case_page.text
    token = csrf_of(client.get("/console/dispatch").text)
    refused = client.post(f"/console/cases/{day['F']}/decide", data={"csrf": token, "decision": "confirm"})
    assert refused.status_code == 403
    assert _status(sessions, day["F"])[0] is S.DRAFT


def test_dispatch_posts_need_the_csrf_token(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    sign_in(client, keys[Role.DISPATCHER])
    for data in ({"priority": "normal"}, {"priority": "normal", "csrf": "forged"}):
        refused = client.post(f"/console/dispatch/{day['H']}/file", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
    assert _status(sessions, day["H"])[0] is S.CONFIRMED
    # Without a session at all: 401, and the API key is no session.
    client.cookies.clear()
    anonymous = client.post(f"/console/dispatch/{day['H']}/file", headers=bearer(keys[Role.DISPATCHER]))
    assert anonymous.status_code == 401
    assert client.get("/console/dispatch", follow_redirects=False).headers["location"] == "/console/sign-in"
    assert client.get("/console/kpis", follow_redirects=False).headers["location"] == "/console/sign-in"


def _cells(page: str, key: str) -> list[str]:
    row = re.search(rf'<tr class="kpi-row" data-key="{re.escape(key)}">(.*?)</tr>', page, re.S)
    assert row is not None, key
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def _bars(page: str, chart: str) -> list[tuple[str, str]]:
    svg = re.search(rf'<figure class="chart" id="{chart}">.*?</figure>', page, re.S)
    assert svg is not None, chart
    return re.findall(r'<rect class="bar series-\w+" data-series="(\w+)" data-value="([^"]*)"', svg.group(0))


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.DISPATCHER, Role.ADMIN])
def test_the_kpi_page_shows_the_day_in_numbers_and_bars(
    client: TestClient, keys: dict[Role, str], day: dict[str, int], role: Role
) -> None:
    sign_in(client, keys[role])
    response = client.get("/console/kpis", params={"since": "2025-05-01T10:00", "until": "2025-05-02T10:00"})
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    totals = dict(re.findall(r'<b id="total-([\w-]+)">([^<]*)</b>', page))
    assert totals == {
        "found": "7",
        "confirmed-rate": "83%",  # 5 of 6
        "closed": "3",
        "median": "3 h 10 min",  # 11400 s, of 7200, 11400 and 15000
        "on-time": "67%",  # 2 of 3
        "overdue": "1",
    }
    # Per grid (the default): G1, G2, then the cases in no grid.
    # found, reviewed, confirmed, rate, filed, closed, median (of 11400 and 15000 s), handled, on time, rate, overdue
    g1 = ["4", "4", "3", "75%", "3", "2", "3 h 40 min", "2", "1", "50%", "1"]
    assert _cells(page, G1) == ["Tianhe 001 (GZ-TH-001)", *g1]
    assert _cells(page, "") == ["In no grid", "1", "1", "1", "100%", "1", "1", "2 h", "1", "1", "100%", "0"]
    counts = _bars(page, "chart-counts")
    assert counts[:3] == [("found", "4"), ("confirmed", "3"), ("closed", "2")]  # G1
    assert counts[3:6] == [("found", "2"), ("confirmed", "1"), ("closed", "0")]  # G2
    rates = _bars(page, "chart-rates")
    assert rates == [
        ("confirmed_rate", "75%"),
        ("on_time_rate", "50%"),
        ("confirmed_rate", "100%"),
        ("on_time_rate", "\u2013"),  # nothing handled in G2: no rate, not a zero
        ("confirmed_rate", "100%"),
        ("on_time_rate", "100%"),
    ]
    spots = re.findall(r'<tr class="hot-spot"><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', page)
    assert spots == [("Tianhe 001 (GZ-TH-001)", "cam-1", "zone-a")]


def test_the_kpi_page_per_department_in_chinese(client: TestClient, keys: dict[Role, str], day: dict[str, int]) -> None:
    sign_in(client, keys[Role.DISPATCHER])
    client.get("/console/lang/zh")
    page = client.get("/console/kpis", params={"group_by": "department", "until": "2025-05-02T10:00"}).text
    assert "考核指标" in page and "按时处置率" in page
    assert _cells(page, EAST)[:2] == ["Sanitation East (sanitation-east)", "3"]
    assert _cells(page, WEST)[:2] == ["Sanitation West (sanitation-west)", "2"]
    assert _cells(page, "")[:2] == ["未派遣", "3"]  # D, F and, without a start, H


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"group_by": "camera"}, "group_by"),
        ({"type": "graffiti"}, "type"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-05-02T00:00", "until": "2025-05-01T00:00"}, "until"),
        ({"repeat_n": "1"}, "repeat_n"),
        ({"repeat_days": "x"}, "repeat_days"),
    ],
)
def test_a_bad_kpi_query_names_the_field(
    client: TestClient, keys: dict[Role, str], params: dict[str, str], named: str
) -> None:
    sign_in(client, keys[Role.REVIEWER])
    response = client.get("/console/kpis", params=params)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{named}:")
