"""The case console lets in only signed-in reviewers, dispatchers and admins, refuses forged forms, and escapes camera
text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from case_helpers import Clock, bearer, case_body, jpeg, post_case
from console_helpers import csrf_of, post_roles, sign_in
from fastapi.testclient import TestClient

from service.schemas import Role
from service.settings import ServiceSettings


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/console/", 303),
        ("/console/cases/1", 303),
        ("/console/cases/1/evidence/0", 401),
        ("/console/queue/live", 401),
    ],
)
def test_nothing_without_a_session(client: TestClient, agent: str, reviewer: str, path: str, code: int) -> None:
    post_roles(client, agent, key="v1", seed=1)
    anonymous = client.get(path, follow_redirects=False)
    assert anonymous.status_code == code
    if code == 303:
        assert anonymous.headers["location"] == "/console/sign-in"
    # An API key is no session: the console's routes do not take the Authorization header.
    assert client.get(path, headers=bearer(reviewer), follow_redirects=False).status_code == code
    # ... and the API still does, unchanged.
    assert client.get("/api/v1/cases/1/evidence/0", headers=bearer(reviewer)).status_code == 200


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ADMIN])
def test_reviewers_and_admins_sign_in_and_out(client: TestClient, keys: dict[Role, str], role: Role) -> None:
    signed = sign_in(client, keys[role])
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/"
    cookie = signed.headers["set-cookie"]
    assert "sw_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Max-Age=43200" in cookie
    page = client.get("/console/")
    assert page.status_code == 200
    assert f"test-{role.value}" in page.text

    out = client.post("/console/sign-out", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_an_agent_key_cannot_sign_in(client: TestClient, agent: str) -> None:
    refused = sign_in(client, agent)
    assert refused.status_code == 403
    assert "agent key cannot sign in" in refused.text
    assert "sw_session" not in refused.headers.get("set-cookie", "")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_the_bootstrap_agent_key_cannot_sign_in(
    make_client: Callable[[ServiceSettings], TestClient], make_settings: Callable[..., ServiceSettings]
) -> None:
    client = make_client(make_settings(bootstrap_agent_key="sw_embedded-pipeline-key"))
    assert sign_in(client, "sw_embedded-pipeline-key").status_code == 403


def test_an_unknown_or_revoked_key_cannot_sign_in(client: TestClient, keys: dict[Role, str]) -> None:
    assert sign_in(client, "sw_not-a-key").status_code == 401
    _revoke_reviewer_key(client, keys[Role.ADMIN])
    assert sign_in(client, keys[Role.REVIEWER]).status_code == 401


def test_revoking_the_key_ends_its_session(client: TestClient, keys: dict[Role, str]) -> None:
    assert sign_in(client, keys[Role.REVIEWER]).status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 200
    _revoke_reviewer_key(client, keys[Role.ADMIN])
    assert client.get("/console/", follow_redirects=False).status_code == 303


def _revoke_reviewer_key(client: TestClient, admin: str) -> None:
    listed = client.get("/api/v1/keys", headers=bearer(admin)).json()
    key_id = next(k["id"] for k in listed if k["role"] == "reviewer")
    assert client.delete(f"/api/v1/keys/{key_id}", headers=bearer(admin)).status_code == 200


def test_a_session_expires(client: TestClient, reviewer: str, clock: Clock) -> None:
    assert sign_in(client, reviewer).status_code == 303
    clock.advance(12 * 3600 - 1)
    assert client.get("/console/", follow_redirects=False).status_code == 200
    clock.advance(1)
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_posts_without_the_csrf_token_are_refused(client: TestClient, agent: str, reviewer: str) -> None:
    case_id = post_roles(client, agent, key="v1", seed=1)
    client.get("/console/sign-in")  # the form's token is in a cookie, but not in these posts
    assert client.post("/console/sign-in", data={"key": reviewer}, follow_redirects=False).status_code == 403
    assert client.post("/console/sign-in", data={"key": reviewer, "csrf": "forged"}).status_code == 403
    assert client.get("/console/", follow_redirects=False).status_code == 303  # still signed out
    form = client.get("/console/sign-in")
    assert client.post("/console/sign-in", data={"key": reviewer, "csrf": csrf_of(form.text)}).status_code == 200

    for data in ({"decision": "confirm"}, {"decision": "confirm", "csrf": "forged"}):
        refused = client.post(f"/console/cases/{case_id}/decide", data=data, follow_redirects=False)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=bearer(reviewer)).json()["status"] == "draft"
    assert client.post("/console/sign-out", data={}, follow_redirects=False).status_code == 403
    assert client.post("/console/undo", data={}, follow_redirects=False).status_code == 403
    assert client.post(f"/console/cases/{case_id}/reopen", data={"reason": "x"}).status_code == 403
    assert client.get("/console/", follow_redirects=False).status_code == 200  # the session survived


def test_text_from_the_pipeline_is_escaped(client: TestClient, agent: str, reviewer: str) -> None:
    body = case_body(
        camera_id="<script>alert('cam')</script>",
        zone_id='"><img src=x onerror=alert(1)>',
        labels=["<script>alert('label')</script>"],
        model_version="<b>v1</b>",
    )
    case_id = post_case(client, agent, body=body, images=[jpeg(1)]).json()["id"]
    sign_in(client, reviewer)
    for path in ("/console/", f"/console/cases/{case_id}", "/console/queue/live"):
        page = client.get(path).text
        assert "<script>alert" not in page
        assert "<img src=x" not in page
    case_page = client.get(f"/console/cases/{case_id}")
    assert "&lt;script&gt;alert(&#39;label&#39;)&lt;/script&gt;" in case_page.text
    assert "&lt;b&gt;v1&lt;/b&gt;" in case_page.text
    # Nothing inline may run even if something slipped through.
    assert "script-src 'self'" in case_page.headers["content-security-policy"]
    assert case_page.headers["x-frame-options"] == "DENY"


def test_the_language_switch_goes_nowhere_but_the_console(client: TestClient) -> None:
    away = client.get("/console/lang/zh", params={"back": "https://evil.example/"}, follow_redirects=False)
    assert away.headers["location"] == "/console/"
    assert (
        client.get("/console/lang/zh", params={"back": "//evil.example/"}, follow_redirects=False).headers["location"]
        == "/console/"
    )
