"""The camera verifies, on the API: agents list the handled cases of their cameras and post what the camera saw,
which stores the `after` image beside the case's scene and proposes passed or failed to the reviewer."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from case_helpers import Clock, bearer, case_body, jpeg, post_case
from console_helpers import sign_in
from fastapi.testclient import TestClient
from sqlalchemy import select

from service import grids, loop
from service.admin import open_database
from service.auth import Principal
from service.models import CaseEventRow
from service.schemas import CaseStatus, EventKind, LoopAction, Role
from service.settings import ServiceSettings

ADMIN = Principal(key_id=None, name="admin", role=Role.ADMIN)
DEPARTMENT = "sanitation-east"


class Cases:
    """Cases posted by the agent over the API and taken along the loop in-process, as an admin would."""

    def __init__(self, client: TestClient, settings: ServiceSettings, keys: dict[Role, str], clock: Clock) -> None:
        self.client = client
        self.settings = settings
        self.keys = keys
        self.clock = clock
        self.posted = 0
        with open_database(settings) as sessions, sessions() as session:
            grids.create_department(session=session, department_id=DEPARTMENT, name="Sanitation East")

    def at(self, status: CaseStatus, *, camera_id: str = "cam-curb-01") -> int:
        """A new case of `camera_id` brought to `status` (confirmed, dispatched or handled)."""
        self.posted += 1
        # A zone of its own, so that no case merges into another.
        body = case_body(detected_after_s=60 * self.posted, camera_id=camera_id, zone_id=f"zone-{self.posted}")
        scene = ("scene.jpg", jpeg(seed=self.posted), "image/jpeg")
        resp = post_case(
            self.client, self.keys[Role.AGENT], idempotency_key=f"v{self.posted}", body=body, images=[scene]
        )
        assert resp.status_code == 201, resp.text
        case_id: int = resp.json()["id"]
        review = {"decision": "confirm"}
        assert self.client.post(
            f"/api/v1/cases/{case_id}/review", json=review, headers=bearer(self.keys[Role.REVIEWER])
        ).is_success
        steps = {
            CaseStatus.CONFIRMED: [],
            CaseStatus.DISPATCHED: [LoopAction.FILE, LoopAction.DISPATCH],
            CaseStatus.HANDLED: [LoopAction.FILE, LoopAction.DISPATCH, LoopAction.HANDLE],
        }[status]
        for action in steps:
            self.act(case_id, action)
        return case_id

    def act(self, case_id: int, action: LoopAction) -> None:
        inputs: dict[str, Any] = {
            LoopAction.DISPATCH: {"department_id": DEPARTMENT},
            LoopAction.HANDLE: {"note": "towed away"},
            LoopAction.VERIFY_FAIL: {"note": "still there"},
        }.get(action, {})
        with open_database(self.settings) as sessions, sessions() as session:
            loop.act(session=session, case_id=case_id, action=action, actor=ADMIN, now=self.clock(), **inputs)

    def events(self, case_id: int) -> list[EventKind]:
        with open_database(self.settings) as sessions, sessions() as session:
            rows = session.scalars(
                select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.id)
            )
            return [r.kind for r in rows]


@pytest.fixture
def cases(client: TestClient, settings: ServiceSettings, keys: dict[Role, str], clock: Clock) -> Cases:
    return Cases(client, settings, keys, clock)


def pending(client: TestClient, key: str, *cameras: str) -> httpx.Response:
    return client.get("/api/v1/verifications", params=[("camera_id", c) for c in cameras], headers=bearer(key))


def verify(
    client: TestClient,
    key: str,
    case_id: int,
    outcome: str = "absent",
    *,
    idempotency_key: str = "look-1",
    after: bytes | None = None,
    observed_at: str = "2025-05-01T12:00:00+00:00",
) -> httpx.Response:
    return client.post(
        f"/api/v1/cases/{case_id}/verification",
        data={"outcome": outcome, "observed_at": observed_at},
        files=[("after", ("after.jpg", jpeg(seed=99) if after is None else after, "image/jpeg"))],
        headers={**bearer(key), "Idempotency-Key": idempotency_key},
    )


def test_the_listing_names_the_handled_cases_of_the_agents_cameras_only(
    client: TestClient, cases: Cases, keys: dict[Role, str]
) -> None:
    handled = cases.at(CaseStatus.HANDLED)
    cases.at(CaseStatus.DISPATCHED)
    cases.at(CaseStatus.HANDLED, camera_id="cam-other")
    third = cases.at(CaseStatus.HANDLED, camera_id="cam-third")

    resp = pending(client, keys[Role.AGENT], "cam-curb-01", "cam-third")

    assert resp.status_code == 200, resp.text
    items = resp.json()
    assert [i["case_id"] for i in items] == [handled, third]
    first = items[0]
    assert first["camera_id"] == "cam-curb-01" and first["zone_id"] == "zone-1"
    assert first["type"] == "illegal_parking" and first["bbox"] == [0.10, 0.50, 0.40, 0.80]
    assert first["handled_at"] == "2025-05-01T11:00:00Z"
    assert first["deadline_at"] == "2025-05-01T13:00:00Z"  # dispatched at 11:00, illegal parking has 2 h
    assert pending(client, keys[Role.ADMIN], "cam-curb-01").json()[0]["case_id"] == handled


@pytest.mark.parametrize(("outcome", "proposal"), [("absent", "passed"), ("present", "failed")])
def test_a_verification_stores_the_after_image_beside_the_scene_and_proposes_to_the_reviewer(
    client: TestClient, cases: Cases, keys: dict[Role, str], outcome: str, proposal: str
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)
    after = jpeg(seed=42)

    resp = verify(client, keys[Role.AGENT], case_id, outcome, after=after)

    assert resp.status_code == 201, resp.text
    assert resp.json() == {"case_id": case_id, "proposal": proposal, "outcome": "created"}
    case = client.get(f"/api/v1/cases/{case_id}", headers=bearer(keys[Role.REVIEWER])).json()
    assert case["status"] == "handled"
    assert [e["role"] for e in case["evidence"]] == ["scene", "after"]
    assert client.get(case["evidence"][1]["url"], headers=bearer(keys[Role.REVIEWER])).content == after
    assert cases.events(case_id)[-1] is EventKind.VERIFICATION_PROPOSED
    assert pending(client, keys[Role.AGENT], "cam-curb-01").json() == []  # the camera is done with it


def test_a_replay_of_the_key_records_nothing_new_and_another_outcome_under_it_is_refused(
    client: TestClient, cases: Cases, keys: dict[Role, str]
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)
    assert verify(client, keys[Role.AGENT], case_id).status_code == 201

    again = verify(client, keys[Role.AGENT], case_id)
    other = verify(client, keys[Role.AGENT], case_id, "present")

    assert again.status_code == 200 and again.json()["outcome"] == "replayed"
    assert other.status_code == 409 and "first used for the absent verification" in other.json()["detail"]
    case = client.get(f"/api/v1/cases/{case_id}", headers=bearer(keys[Role.REVIEWER])).json()
    assert [e["role"] for e in case["evidence"]] == ["scene", "after"]
    assert cases.events(case_id).count(EventKind.VERIFICATION_PROPOSED) == 1


@pytest.mark.parametrize("status", [CaseStatus.CONFIRMED, CaseStatus.DISPATCHED])
def test_a_case_that_is_not_handled_takes_no_verification(
    client: TestClient, cases: Cases, keys: dict[Role, str], status: CaseStatus
) -> None:
    case_id = cases.at(status)

    resp = verify(client, keys[Role.AGENT], case_id)

    assert resp.status_code == 409
    assert resp.json()["detail"] == (
        f"case {case_id} is {status.value}: a verification is taken only while a case is handled"
    )
    case = client.get(f"/api/v1/cases/{case_id}", headers=bearer(keys[Role.REVIEWER])).json()
    assert [e["role"] for e in case["evidence"]] == ["scene"]


def test_a_second_look_under_another_key_is_refused_until_a_failed_check_hands_the_case_back(
    client: TestClient, cases: Cases, keys: dict[Role, str]
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)
    assert verify(client, keys[Role.AGENT], case_id, "present").status_code == 201

    second = verify(client, keys[Role.AGENT], case_id, idempotency_key="look-2")
    assert second.status_code == 409 and "has the camera's proposal already (failed)" in second.json()["detail"]

    # The reviewer agrees it failed; the department handles it again; the camera looks again.
    cases.act(case_id, LoopAction.VERIFY_FAIL)
    cases.act(case_id, LoopAction.HANDLE)
    assert [i["case_id"] for i in pending(client, keys[Role.AGENT], "cam-curb-01").json()] == [case_id]
    assert verify(client, keys[Role.AGENT], case_id, idempotency_key="look-2").status_code == 201


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.DISPATCHER, Role.DEPARTMENT])
def test_only_agents_and_admins_list_and_post_verifications(
    client: TestClient, cases: Cases, keys: dict[Role, str], role: Role
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)

    posted = verify(client, keys[role], case_id)
    listed = pending(client, keys[role], "cam-curb-01")

    assert posted.status_code == 403 and listed.status_code == 403
    assert f"this API key has role '{role.value}'" in posted.json()["detail"]
    assert verify(client, keys[Role.ADMIN], case_id).status_code == 201


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"outcome": "gone"}, 422, "outcome"),
        ({"observed_at": "2025-05-01T12:00:00"}, 422, "observed_at"),
        ({"after": b"not an image"}, 415, "after is not a JPEG or PNG image"),
        ({"case_id": 999}, 404, "no case 999"),
    ],
)
def test_bad_verifications_are_refused_naming_the_problem(
    client: TestClient,
    cases: Cases,
    keys: dict[Role, str],
    change: dict[str, Any],
    status: int,
    field: str,
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)
    data = {"outcome": "absent", "observed_at": "2025-05-01T12:00:00+00:00"} | {
        k: v for k, v in change.items() if k in ("outcome", "observed_at")
    }
    target = change.get("case_id", case_id)

    resp = client.post(
        f"/api/v1/cases/{target}/verification",
        data=data,
        files=[("after", ("after.jpg", change.get("after", jpeg()), "image/jpeg"))],
        headers={**bearer(keys[Role.AGENT]), "Idempotency-Key": "look-1"},
    )

    assert resp.status_code == status, resp.text
    assert field in resp.json()["detail"]


def test_the_listing_needs_a_camera(client: TestClient, keys: dict[Role, str]) -> None:
    resp = pending(client, keys[Role.AGENT])

    assert resp.status_code == 422 and "camera_id" in resp.json()["detail"]


def test_the_console_shows_the_before_and_after_pair_and_the_proposal(
    client: TestClient, cases: Cases, keys: dict[Role, str]
) -> None:
    case_id = cases.at(CaseStatus.HANDLED)
    after = jpeg(seed=7)
    assert verify(client, keys[Role.AGENT], case_id, after=after).status_code == 201
    assert sign_in(client, keys[Role.REVIEWER]).status_code == 303

    page = client.get(f"/console/cases/{case_id}", headers={"Accept-Language": "en"}).text

    pair = page.split('id="before-after"', 1)[1].split("</div>", 1)[0]
    images = re.findall(r'src="(/console/cases/\d+/evidence/\d+)"', pair)
    captions = re.findall(r'<figcaption data-role="(\w+)">([^<]+)</figcaption>', pair)
    assert captions == [("before", "Before (scene)"), ("after", "After (camera check)")]
    assert client.get(images[0]).content == jpeg(seed=1)  # the scene the case was raised with
    assert client.get(images[1]).content == after
    assert 'id="verification-proposal">gone: proposes check passed<' in page
