"""The closed loop over HTTP: actions by role, a department's view and photo, overdue cases, list filters, an
action's Idempotency-Key, the grid map's admin API, and bad input answered with the field named."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from case_helpers import Clock, bearer, case_body, jpeg, post_case
from conftest import TEST_DEPARTMENT
from fastapi.testclient import TestClient

from service.schemas import Role

GRID = "GZ-TH-001"


def act(client: TestClient, key: str, case_id: int, action: str, **body: Any) -> httpx.Response:
    """POST an action with a JSON body."""
    return client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=bearer(key))


@pytest.fixture
def confirmed(client: TestClient, keys: dict[Role, str]) -> int:
    """A confirmed case in no grid."""
    case_id = post_case(client, keys[Role.AGENT]).json()["id"]
    decided = client.post(
        f"/api/v1/cases/{case_id}/review", json={"decision": "confirm"}, headers=bearer(keys[Role.REVIEWER])
    )
    assert decided.status_code == 200
    return int(case_id)


def test_a_case_goes_round_the_loop_with_each_role_doing_its_part(
    client: TestClient, keys: dict[Role, str], confirmed: int, clock: Clock
) -> None:
    filed = act(client, keys[Role.REVIEWER], confirmed, "file", priority="urgent")
    assert filed.status_code == 200, filed.text
    assert (filed.json()["status"], filed.json()["priority"]) == ("filed", "urgent")

    dispatched = act(client, keys[Role.DISPATCHER], confirmed, "dispatch", department_id=TEST_DEPARTMENT).json()
    assert (dispatched["status"], dispatched["department_id"]) == ("dispatched", TEST_DEPARTMENT)
    assert dispatched["deadline_at"] == "2025-05-01T12:00:00Z"  # an hour after dispatch: urgent parking
    assert dispatched["overdue"] is False

    # The department sees it, handles it with a note and a photo of the cleared curb.
    department = bearer(keys[Role.DEPARTMENT])
    assert [c["id"] for c in client.get("/api/v1/cases", headers=department).json()["items"]] == [confirmed]
    clock.advance(1800)
    handled = client.post(
        f"/api/v1/cases/{confirmed}/actions/handle",
        data={"note": "car towed"},
        files={"photo": ("after.jpg", jpeg(7), "image/jpeg")},
        headers=department,
    )
    assert handled.status_code == 200, handled.text
    case = handled.json()
    assert (case["status"], case["handling_note"], case["handled_at"]) == (
        "handled",
        "car towed",
        "2025-05-01T11:30:00Z",
    )
    photo = case["evidence"][-1]
    assert photo["role"] == "handled"
    assert client.get(photo["url"], headers=department).content == jpeg(7)

    assert act(client, keys[Role.REVIEWER], confirmed, "verify_pass", note="curb clear").json()["status"] == "verified"
    closed = act(client, keys[Role.DISPATCHER], confirmed, "close").json()
    assert closed["status"] == "closed"
    assert [(t["action"], t["from_status"], t["to_status"], t["actor"]) for t in closed["transitions"]] == [
        ("file", "confirmed", "filed", "test-reviewer"),
        ("dispatch", "filed", "dispatched", "test-dispatcher"),
        ("handle", "dispatched", "handled", "test-department"),
        ("verify_pass", "handled", "verified", "test-reviewer"),
        ("close", "verified", "closed", "test-dispatcher"),
    ]


def test_an_illegal_action_is_409_naming_status_and_action_and_a_wrong_role_403(
    client: TestClient, keys: dict[Role, str], confirmed: int
) -> None:
    illegal = act(client, keys[Role.ADMIN], confirmed, "close")
    assert illegal.status_code == 409
    assert illegal.json()["detail"] == "case 1 is confirmed: 'close' is not allowed from there (it allows file)"
    forbidden = act(client, keys[Role.AGENT], confirmed, "file")
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "this API key has role 'agent'; 'file' needs admin or dispatcher or reviewer"
    assert act(client, keys[Role.DEPARTMENT], confirmed, "handle", note="x").status_code == 404
    assert client.get(f"/api/v1/cases/{confirmed}", headers=bearer(keys[Role.REVIEWER])).json()["status"] == "confirmed"


def test_a_department_key_sees_only_its_own_cases(client: TestClient, keys: dict[Role, str], confirmed: int) -> None:
    admin, department = bearer(keys[Role.ADMIN]), bearer(keys[Role.DEPARTMENT])
    assert client.post("/api/v1/departments", json={"id": "parks", "name": "Parks"}, headers=admin).status_code == 201
    act(client, keys[Role.ADMIN], confirmed, "file")
    act(client, keys[Role.ADMIN], confirmed, "dispatch", department_id="parks")
    assert client.get("/api/v1/cases", headers=department).json()["items"] == []
    assert client.get(f"/api/v1/cases/{confirmed}", headers=department).status_code == 404
    assert client.get(f"/api/v1/cases/{confirmed}/evidence/0", headers=department).status_code == 404
    other = client.get("/api/v1/cases", params={"department_id": "parks"}, headers=department)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "query.department_id"
    assert act(client, keys[Role.DEPARTMENT], confirmed, "return", note="not ours").status_code == 404
    listed = client.get("/api/v1/cases", params={"department_id": "parks"}, headers=admin).json()["items"]
    assert [c["id"] for c in listed] == [confirmed]


def test_overdue_by_the_apps_clock_and_the_list_filters(
    client: TestClient, keys: dict[Role, str], clock: Clock
) -> None:
    admin = bearer(keys[Role.ADMIN])
    client.post("/api/v1/grids", json={"id": GRID, "name": "Tianhe 001"}, headers=admin)
    zone = {"camera_id": "cam-curb-01", "zone_id": "near-curb", "grid_id": GRID}
    assert client.post("/api/v1/grid-zones", json=zone, headers=admin).status_code == 201
    duty = {"grid_id": GRID, "type": "illegal_parking", "department_id": TEST_DEPARTMENT}
    assert client.put("/api/v1/grid-duties", json=duty, headers=admin).status_code == 200
    in_grid = post_case(client, keys[Role.AGENT], idempotency_key="v1").json()["id"]
    outside = post_case(client, keys[Role.AGENT], idempotency_key="v2", body=case_body(camera_id="cam-2")).json()["id"]
    for case_id in (in_grid, outside):
        client.post(f"/api/v1/cases/{case_id}/review", json={"decision": "confirm"}, headers=admin)
    # Filed in the grid: dispatched at once by the grid map; outside it: waits filed.
    assert act(client, keys[Role.REVIEWER], in_grid, "file").json()["transitions"][-1]["actor"] == "system"
    assert act(client, keys[Role.REVIEWER], outside, "file").json()["status"] == "filed"

    def listed(**params: Any) -> list[int]:
        return [c["id"] for c in client.get("/api/v1/cases", params=params, headers=admin).json()["items"]]

    assert listed(grid_id=GRID) == [in_grid]
    assert listed(department_id=TEST_DEPARTMENT) == [in_grid]
    assert listed(status="filed") == [outside]
    assert listed(overdue="true") == []
    clock.advance(2 * 3600 + 1)  # past the 2 h of normal illegal parking
    assert listed(overdue="true") == [in_grid]
    assert sorted(listed(overdue="false")) == [outside]
    assert client.get(f"/api/v1/cases/{in_grid}", headers=admin).json()["overdue"] is True
    act(client, keys[Role.DEPARTMENT], in_grid, "handle", note="late, but done")
    assert listed(overdue="true") == []
    assert client.get(f"/api/v1/cases/{in_grid}", headers=admin).json()["overdue"] is False


def test_a_repeated_handle_with_its_idempotency_key_changes_nothing(
    client: TestClient, keys: dict[Role, str], confirmed: int, clock: Clock
) -> None:
    act(client, keys[Role.ADMIN], confirmed, "file")
    act(client, keys[Role.ADMIN], confirmed, "dispatch", department_id=TEST_DEPARTMENT)
    callback = bearer(keys[Role.DEPARTMENT]) | {"Idempotency-Key": "ticket-4711/handled"}
    url = f"/api/v1/cases/{confirmed}/actions/handle"
    first = client.post(url, json={"note": "swept"}, headers=callback)
    clock.advance(60)
    again = client.post(url, json={"note": "swept"}, headers=callback)  # the department's system retrying
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["handled_at"] == first.json()["handled_at"]
    assert [t["action"] for t in again.json()["transitions"]] == ["file", "dispatch", "handle"]
    other = client.post(f"/api/v1/cases/{confirmed}/actions/return", json={"note": "x"}, headers=callback)
    assert other.status_code == 409
    assert "first used for 'handle' on case 1" in other.json()["detail"]
    # Without a key a repeat is what it is: an illegal transition.
    assert act(client, keys[Role.DEPARTMENT], confirmed, "handle", note="swept").status_code == 409


@pytest.mark.parametrize(
    ("action", "body", "field", "message"),
    [
        ("dispatch", {"department_id": "nobody"}, "department_id", "no department 'nobody'"),
        ("dispatch", {}, "department_id", "has no department by the grid map"),
        ("dispatch", {"department_id": "no spaces allowed"}, "department_id", "should match pattern"),
        ("dispatch", {"priority": "asap", "department_id": TEST_DEPARTMENT}, "priority", "'normal' or 'urgent'"),
        ("dispatch", {"department_id": TEST_DEPARTMENT, "colour": "red"}, "colour", "Extra inputs are not permitted"),
        ("dispatch", {"note": "a" * 2001, "department_id": TEST_DEPARTMENT}, "note", "at most 2000 characters"),
        ("close", {"department_id": TEST_DEPARTMENT}, "department_id", "only dispatch takes a department_id"),
    ],
)
def test_bad_action_input_is_422_naming_the_field(
    client: TestClient,
    keys: dict[Role, str],
    confirmed: int,
    action: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    act(client, keys[Role.ADMIN], confirmed, "file")
    got = act(client, keys[Role.ADMIN], confirmed, action, **body)
    assert got.status_code == 422, got.text
    (error,) = got.json()["errors"]
    assert error["field"] == field and message in error["message"]
    assert client.get(f"/api/v1/cases/{confirmed}", headers=bearer(keys[Role.ADMIN])).json()["status"] == "filed"


def test_a_note_is_required_to_handle_in_json_and_in_a_form(
    client: TestClient, keys: dict[Role, str], confirmed: int
) -> None:
    admin = bearer(keys[Role.ADMIN])
    act(client, keys[Role.ADMIN], confirmed, "file")
    act(client, keys[Role.ADMIN], confirmed, "dispatch", department_id=TEST_DEPARTMENT)
    url = f"/api/v1/cases/{confirmed}/actions/handle"
    for response in (
        client.post(url, headers=admin),
        client.post(url, json={"note": "  "}, headers=admin),
        client.post(url, files={"photo": ("p.jpg", jpeg(), "image/jpeg")}, headers=admin),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "note"
    not_an_image = client.post(
        url, data={"note": "done"}, files={"photo": ("p.jpg", b"text", "image/jpeg")}, headers=admin
    )
    assert not_an_image.status_code == 415
    assert not_an_image.json()["detail"] == "photo is not a JPEG or PNG image that decodes completely"
    photo = {"photo": ("p.jpg", jpeg(), "image/jpeg")}
    extra = client.post(url, data={"note": "done", "colour": "red"}, files=photo, headers=admin)
    assert (extra.status_code, extra.json()["errors"][0]["field"]) == (422, "colour")
    twice = client.post(url, data={"note": ["done", "again"]}, files=photo, headers=admin)
    assert (twice.status_code, twice.json()["errors"][0]) == (422, {"field": "note", "message": "given more than once"})
    urlencoded = client.post(url, data={"note": "done"}, headers=admin)
    assert urlencoded.status_code == 415
    assert client.get(f"/api/v1/cases/{confirmed}", headers=admin).json()["evidence_count"] == 1  # no photo kept


@pytest.mark.parametrize(
    ("headers", "content", "status", "detail"),
    [
        ({"Content-Type": "text/plain"}, b"file it", 415, "send the action's inputs as application/json"),
        ({"Content-Type": "application/json"}, b"{not json", 422, "invalid JSON"),
        ({"Content-Type": "application/json"}, b"[]", 422, "Input should be an object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    client: TestClient,
    keys: dict[Role, str],
    confirmed: int,
    headers: dict[str, str],
    content: bytes,
    status: int,
    detail: str,
) -> None:
    got = client.post(
        f"/api/v1/cases/{confirmed}/actions/file", content=content, headers=bearer(keys[Role.ADMIN]) | headers
    )
    assert got.status_code == status, got.text
    assert detail in got.json()["detail"]


def test_only_handle_takes_a_form_and_unknown_actions_are_422(
    client: TestClient, keys: dict[Role, str], confirmed: int
) -> None:
    admin = bearer(keys[Role.ADMIN])
    form = client.post(
        f"/api/v1/cases/{confirmed}/actions/file", data={"note": "x"}, files={"f": ("a", b"a")}, headers=admin
    )
    assert form.status_code == 415
    assert "only handle takes a multipart body" in form.json()["detail"]
    unknown = client.post(f"/api/v1/cases/{confirmed}/actions/approve", json={}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "path.action"
    assert client.post("/api/v1/cases/999/actions/file", json={}, headers=admin).status_code == 404


def test_admins_keep_the_grid_map(client: TestClient, keys: dict[Role, str]) -> None:
    admin, dispatcher = bearer(keys[Role.ADMIN]), bearer(keys[Role.DISPATCHER])

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return client.request(method, f"/api/v1/{path}", headers=admin, **kwargs)

    assert call("POST", "grids", json={"id": GRID, "name": "Tianhe 001"}).status_code == 201
    assert call("POST", "grids", json={"id": "GZ-TH-002", "name": "Tianhe 002"}).status_code == 201
    zone = {"camera_id": "cam-1", "zone_id": "curb", "grid_id": GRID}
    assert call("POST", "grid-zones", json=zone).status_code == 201
    taken = call("POST", "grid-zones", json=zone | {"grid_id": "GZ-TH-002"})
    assert taken.status_code == 409
    assert taken.json()["detail"].startswith(f"zone 'curb' of camera 'cam-1' is in grid '{GRID}' already")
    unknown_grid = call("POST", "grid-zones", json=zone | {"zone_id": "walk", "grid_id": "GZ-XX"})
    assert (unknown_grid.status_code, unknown_grid.json()["errors"][0]) == (
        422,
        {"field": "grid_id", "message": "no grid 'GZ-XX'"},
    )
    duty = {"grid_id": GRID, "type": "piled_litter", "department_id": "nobody"}
    unknown_department = call("PUT", "grid-duties", json=duty)
    assert (unknown_department.status_code, unknown_department.json()["errors"][0]["field"]) == (422, "department_id")
    assert call("PUT", "grid-duties", json=duty | {"department_id": TEST_DEPARTMENT}).status_code == 200
    assert call("POST", "departments", json={"id": TEST_DEPARTMENT, "name": "again"}).status_code == 409
    in_use = call("DELETE", f"departments/{TEST_DEPARTMENT}")
    assert in_use.status_code == 409
    assert in_use.json()["detail"] == f"department '{TEST_DEPARTMENT}' is named by 1 API key(s), 1 grid duty(ies)"
    assert call("PUT", "grids/GZ-TH-002", json={"name": "Tianhe Two"}).json() == {
        "id": "GZ-TH-002",
        "name": "Tianhe Two",
    }
    assert call("PUT", "grids/GZ-NONE", json={"name": "x"}).status_code == 404

    # Dispatchers read the map; only admins change it.
    listed = client.get("/api/v1/grid-zones", params={"grid_id": GRID}, headers=dispatcher)
    assert listed.json() == [zone]
    assert client.get("/api/v1/grid-duties", headers=dispatcher).json() == [duty | {"department_id": TEST_DEPARTMENT}]
    assert client.post("/api/v1/grids", json={"id": "G3", "name": "x"}, headers=dispatcher).status_code == 403

    assert call("DELETE", "grid-zones", params={"camera_id": "cam-1", "zone_id": "curb"}).status_code == 204
    assert call("DELETE", "grid-zones", params={"camera_id": "cam-1", "zone_id": "curb"}).status_code == 404
    assert call("DELETE", "grid-duties", params={"grid_id": GRID, "type": "piled_litter"}).status_code == 204
    assert call("DELETE", f"grids/{GRID}").status_code == 204
    assert [g["id"] for g in call("GET", "grids").json()] == ["GZ-TH-002"]


def test_a_grid_with_cases_stays(client: TestClient, keys: dict[Role, str]) -> None:
    admin = bearer(keys[Role.ADMIN])
    client.post("/api/v1/grids", json={"id": GRID, "name": "Tianhe 001"}, headers=admin)
    client.post(
        "/api/v1/grid-zones", json={"camera_id": "cam-curb-01", "zone_id": "near-curb", "grid_id": GRID}, headers=admin
    )
    assert post_case(client, keys[Role.AGENT]).status_code == 201
    refused = client.delete(f"/api/v1/grids/{GRID}", headers=admin)
    assert (refused.status_code, refused.json()["detail"]) == (409, f"grid '{GRID}' has 1 case(s)")


def test_deadline_policies_are_seeded_and_admins_change_them(client: TestClient, keys: dict[Role, str]) -> None:
    admin = bearer(keys[Role.ADMIN])
    policies = client.get("/api/v1/deadline-policies", headers=bearer(keys[Role.DISPATCHER])).json()
    assert {(p["type"], p["priority"]): p["hours"] for p in policies}[("unpermitted_ad", "urgent")] == 36
    assert len(policies) == 8
    changed = {"type": "street_vending", "priority": "normal", "hours": 1.5}
    assert client.put("/api/v1/deadline-policies", json=changed, headers=admin).json() == changed
    for hours, message in ((0, "greater than 0"), (10_000, "less than or equal to 8784")):
        bad = client.put("/api/v1/deadline-policies", json=changed | {"hours": hours}, headers=admin)
        assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "hours")
        assert message in bad.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"role": "department", "name": "d"}, "a department key needs a department_id"),
        ({"role": "department", "name": "d", "department_id": "nobody"}, "no department 'nobody'"),
        (
            {"role": "reviewer", "name": "r", "department_id": TEST_DEPARTMENT},
            "only a department key names a department_id",
        ),
    ],
)
def test_a_department_key_names_its_department(
    client: TestClient, keys: dict[Role, str], body: dict[str, str], message: str
) -> None:
    got = client.post("/api/v1/keys", json=body, headers=bearer(keys[Role.ADMIN]))
    assert got.status_code == 422
    assert got.json()["errors"] == [{"field": "department_id", "message": message}]
