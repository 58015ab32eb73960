"""Who may do what: every endpoint against every role, and keys that are missing, wrong or revoked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from case_helpers import bearer, case_body, jpeg, multipart, post_case
from fastapi.testclient import TestClient

from service.admin import list_keys
from service.schemas import Role
from service.settings import ServiceSettings

AGENT, REVIEWER, ADMIN = Role.AGENT, Role.REVIEWER, Role.ADMIN
DISPATCHER, DEPARTMENT = Role.DISPATCHER, Role.DEPARTMENT
READERS = {REVIEWER, DISPATCHER, ADMIN}

# (what, method, path, roles that may) — {case} is a draft case posted beforehand (confirmed first for a loop
# action), {key} an agent key's id. A department key may read only its own department's cases: see below.
ENDPOINTS: list[tuple[str, str, str, set[Role]]] = [
    ("post a case", "POST", "/api/v1/cases", {AGENT, ADMIN}),
    ("list cases", "GET", "/api/v1/cases", READERS | {DEPARTMENT}),
    ("read a case", "GET", "/api/v1/cases/{case}", READERS),
    ("read evidence", "GET", "/api/v1/cases/{case}/evidence/0", READERS),
    ("review a case", "POST", "/api/v1/cases/{case}/review", {REVIEWER, ADMIN}),
    ("file a case", "POST", "/api/v1/cases/{case}/actions/file", {REVIEWER, DISPATCHER, ADMIN}),
    ("create a key", "POST", "/api/v1/keys", {ADMIN}),
    ("list keys", "GET", "/api/v1/keys", {ADMIN}),
    ("revoke a key", "DELETE", "/api/v1/keys/{key}", {ADMIN}),
    ("list departments", "GET", "/api/v1/departments", READERS),
    ("create a department", "POST", "/api/v1/departments", {ADMIN}),
    ("list grids", "GET", "/api/v1/grids", READERS),
    ("create a grid", "POST", "/api/v1/grids", {ADMIN}),
    ("list grid zones", "GET", "/api/v1/grid-zones", READERS),
    ("list grid duties", "GET", "/api/v1/grid-duties", READERS),
    ("list deadline policies", "GET", "/api/v1/deadline-policies", READERS),
    ("set a deadline policy", "PUT", "/api/v1/deadline-policies", {ADMIN}),
]
#: Endpoints where a department key gets 404 rather than 403: the draft case is not its department's.
HIDDEN_FROM_DEPARTMENTS = {"read a case", "read evidence"}
ROLE_TABLE = [(what, method, path, role, role in may) for what, method, path, may in ENDPOINTS for role in Role]


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if path == "/api/v1/cases" and method == "POST":
        kwargs["data"], kwargs["files"] = multipart(case_body(), [jpeg()])
        headers["Idempotency-Key"] = "role-check"
    elif path.endswith("/review"):
        kwargs["json"] = {"decision": "confirm"}
    elif path == "/api/v1/keys" and method == "POST":
        kwargs["json"] = {"role": "agent", "name": "new camera"}
    elif path in ("/api/v1/departments", "/api/v1/grids") and method == "POST":
        kwargs["json"] = {"id": "new-1", "name": "New one"}
    elif path == "/api/v1/deadline-policies":
        kwargs["json"] = {"type": "illegal_parking", "priority": "urgent", "hours": 0.5}
    return client.request(method, path, **kwargs)


@pytest.mark.parametrize(
    ("what", "method", "path", "role", "allowed"),
    ROLE_TABLE,
    ids=[f"{role.value} may {'' if ok else 'not '}{what}" for what, _, _, role, ok in ROLE_TABLE],
)
def test_role_boundaries(
    client: TestClient, keys: dict[Role, str], what: str, method: str, path: str, role: Role, allowed: bool
) -> None:
    case_id = post_case(client, keys[AGENT]).json()["id"]
    if "/actions/" in path:
        confirm = {"decision": "confirm"}
        assert client.post(f"/api/v1/cases/{case_id}/review", json=confirm, headers=bearer(keys[ADMIN])).is_success
    agent_key_id = client.get("/api/v1/keys", headers=bearer(keys[ADMIN])).json()[0]["id"]
    got = _call(client, method, path.format(case=case_id, key=agent_key_id), bearer(keys[role]))
    if role is DEPARTMENT and what in HIDDEN_FROM_DEPARTMENTS:
        assert got.status_code == 404, got.text
        assert got.json()["detail"] == f"no case {case_id}"
    elif allowed:
        assert 200 <= got.status_code < 300, got.text
    else:
        assert got.status_code == 403
        assert f"role '{role.value}'" in got.json()["detail"]


@pytest.mark.parametrize(("method", "path"), [(m, p.format(case=1, key=1)) for _, m, p, _ in ENDPOINTS])
def test_every_endpoint_needs_a_key(client: TestClient, method: str, path: str) -> None:
    got = _call(client, method, path, {})
    assert got.status_code == 401
    assert got.json()["detail"] == "missing API key: send 'Authorization: Bearer <key>'"
    assert got.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        ("Basic dXNlcjpwdw==", "missing API key"),
        ("Bearer", "missing API key"),
        ("Bearer sw_not-a-key-this-service-issued", "unknown or revoked API key"),
    ],
    ids=["basic auth", "empty bearer", "wrong key"],
)
def test_malformed_or_wrong_key_is_401(client: TestClient, authorization: str, detail: str) -> None:
    got = client.get("/api/v1/cases", headers={"Authorization": authorization})
    assert got.status_code == 401
    assert detail in got.json()["detail"]


def test_revoked_key_is_401_and_keys_are_stored_hashed(
    client: TestClient, keys: dict[Role, str], settings: ServiceSettings
) -> None:
    admin = bearer(keys[ADMIN])
    created = client.post("/api/v1/keys", json={"role": "reviewer", "name": "night shift"}, headers=admin)
    assert created.status_code == 201
    new = created.json()
    assert client.get("/api/v1/cases", headers=bearer(new["key"])).status_code == 200

    listed = client.get("/api/v1/keys", headers=admin).json()
    assert "key" not in listed[-1]
    assert (listed[-1]["name"], listed[-1]["role"]) == ("night shift", "reviewer")

    revoked = client.delete(f"/api/v1/keys/{new['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/cases", headers=bearer(new["key"])).status_code == 401
    assert client.delete("/api/v1/keys/999", headers=admin).status_code == 404
    assert [k.name for k in list_keys(settings)][-1] == "night shift"


def test_the_last_admin_key_cannot_be_revoked(client: TestClient, keys: dict[Role, str]) -> None:
    admin = bearer(keys[ADMIN])
    me = next(k for k in client.get("/api/v1/keys", headers=admin).json() if k["role"] == "admin")
    refused = client.delete(f"/api/v1/keys/{me['id']}", headers=admin)
    assert refused.status_code == 409
    assert (
        refused.json()["detail"] == f"key {me['id']} is the last admin key: create another admin key before revoking it"
    )
    assert client.get("/api/v1/keys", headers=admin).status_code == 200  # still an admin

    other = client.post("/api/v1/keys", json={"role": "admin", "name": "second admin"}, headers=admin).json()
    assert client.delete(f"/api/v1/keys/{me['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/keys", headers=admin).status_code == 401
    assert client.delete(f"/api/v1/keys/{other['id']}", headers=bearer(other["key"])).status_code == 409


def test_bootstrap_key_is_an_agent_for_this_process_only(
    make_settings: Callable[..., ServiceSettings], make_client: Callable[[ServiceSettings], TestClient]
) -> None:
    settings = make_settings(bootstrap_agent_key="sw_bootstrap-for-this-process-only")
    client = make_client(settings)
    assert post_case(client, "sw_bootstrap-for-this-process-only").status_code == 201
    assert client.get("/api/v1/cases", headers=bearer("sw_bootstrap-for-this-process-only")).status_code == 403
    assert list_keys(settings) == []
    other = make_client(make_settings())
    assert other.get("/api/v1/cases", headers=bearer("sw_bootstrap-for-this-process-only")).status_code == 401
