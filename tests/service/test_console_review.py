"""Reviewers clear the queue in the console: filters, evidence by role, decisions, undo and the audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from case_helpers import Clock, bearer, jpeg, post_case
from console_helpers import csrf_of, post_roles, sign_in
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.admin import open_database
from service.models import Review
from service.schemas import Role
from service.settings import ServiceSettings


def _queue_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-case-id="(\d+)"', page)]


def _decide(client: TestClient, case_id: int, **form: str) -> tuple[int, str]:
    page = client.get(f"/console/cases/{case_id}").text
    response = client.post(
        f"/console/cases/{case_id}/decide", data={"csrf": csrf_of(page), **form}, follow_redirects=False
    )
    return response.status_code, response.headers.get("location", response.text)


def _undo(client: TestClient) -> tuple[int, str]:
    page = client.get("/console/").text
    response = client.post("/console/undo", data={"csrf": csrf_of(page)}, follow_redirects=False)
    return response.status_code, response.headers.get("location", response.text)


def _audit(settings: ServiceSettings, case_id: int) -> list[tuple[str, str | None, str]]:
    with open_database(settings) as sessions, sessions() as session:
        rows = session.scalars(select(Review).where(Review.case_id == case_id).order_by(Review.id))
        return [(r.decision.value, r.reason, r.reviewer) for r in rows]


@pytest.fixture
def three(client: TestClient, agent: str, reviewer: str) -> list[int]:
    """Three draft cases detected a minute apart, posted newest first, and a signed-in reviewer."""
    ids = [
        post_roles(client, agent, key=f"v{n}", seed=n, camera_id=f"cam-{n}", detected_after_s=600 - 60 * n)
        for n in (1, 2, 3)
    ]
    assert sign_in(client, reviewer).status_code == 303
    return ids[::-1]  # oldest first


def test_the_queue_lists_drafts_oldest_first_with_counts_and_thumbnails(
    client: TestClient, agent: str, three: list[int]
) -> None:
    page = client.get("/console/").text
    assert _queue_ids(page) == three
    assert re.search(r'data-type="illegal_parking">Illegal parking <b>3</b>', page)
    assert re.search(r'data-type="street_vending">Street vending <b>0</b>', page)
    assert _queue_ids(client.get("/console/", params={"order": "newest"}).text) == three[::-1]
    # The thumbnail is the scene image the pipeline sent.
    thumb = re.search(rf'src="(/console/cases/{three[0]}/evidence/\d+)"', page)
    assert thumb is not None
    assert client.get(thumb.group(1)).content == jpeg(30)


def test_the_queue_filters_by_type_camera_zone_and_time(client: TestClient, agent: str, three: list[int]) -> None:
    vending = post_roles(client, agent, key="v9", seed=9, type="street_vending", zone_id="market")
    assert _queue_ids(client.get("/console/", params={"type": "street_vending"}).text) == [vending]
    assert _queue_ids(client.get("/console/", params={"camera": "cam-2"}).text) == [three[1]]
    assert _queue_ids(client.get("/console/", params={"zone": "market"}).text) == [vending]
    # Detected at T0+7 min (cam-3), +8, +9 and the vending case at +3: a window over the middle two.
    assert _queue_ids(
        client.get("/console/", params={"since": "2025-05-01T10:08", "until": "2025-05-01T10:10"}).text
    ) == [
        three[1],
        three[2],
    ]
    by_camera = client.get("/console/", params={"camera": "cam-2"}).text
    assert re.search(r'data-type="illegal_parking">Illegal parking <b>1</b>', by_camera)
    assert client.get("/console/", params={"since": "yesterday"}).status_code == 422


def test_new_cases_reach_the_live_rows(client: TestClient, agent: str, three: list[int]) -> None:
    assert _queue_ids(client.get("/console/queue/live").text) == three
    newer = post_roles(client, agent, key="v7", seed=7, camera_id="cam-7", detected_after_s=900)
    assert _queue_ids(client.get("/console/queue/live").text) == [*three, newer]


def test_the_case_view_labels_evidence_by_role(client: TestClient, agent: str, reviewer: str, three: list[int]) -> None:
    page = client.get(f"/console/cases/{three[0]}").text
    captions = re.findall(r'<figcaption data-role="([^"]*)">([^<]*)</figcaption>', page)
    assert captions == [("scene", "Scene"), ("crop", "Crop"), ("first-seen", "First sighting")]
    # The clean scene (evidence 1) is training material: stored and served, but no fourth picture for reviewers.
    shown = re.findall(rf'src="/console/cases/{three[0]}/evidence/(\d+)"', page)
    assert shown == ["0", "2", "3"]
    for n, seed in ((0, 30), (1, 31), (2, 32), (3, 33)):
        assert client.get(f"/console/cases/{three[0]}/evidence/{n}").content == jpeg(seed)
    for part in ("cam-3", "near-curb", "3 min", "0.87", "car", "streetwatch-test-1"):
        assert part in page
    api = client.get(f"/api/v1/cases/{three[0]}", headers=bearer(reviewer)).json()
    assert [e["role"] for e in api["evidence"]] == ["scene", "scene-clean", "crop", "first-seen"]


def test_unnamed_evidence_has_no_role(client: TestClient, agent: str, reviewer: str) -> None:
    case_id = post_case(client, agent, images=[jpeg(1)]).json()["id"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=bearer(reviewer)).json()["evidence"][0]["role"] is None


def test_confirm_then_the_next_case_opens(
    client: TestClient, settings: ServiceSettings, reviewer: str, three: list[int]
) -> None:
    assert _decide(client, three[0], decision="confirm") == (303, f"/console/cases/{three[1]}")
    assert _audit(settings, three[0]) == [("confirm", None, "test-reviewer")]
    assert client.get(f"/api/v1/cases/{three[0]}", headers=bearer(reviewer)).json()["status"] == "confirmed"
    assert _queue_ids(client.get("/console/").text) == three[1:]
    # Deciding the last case leads back to the first one left.
    assert _decide(client, three[2], decision="confirm") == (303, f"/console/cases/{three[1]}")
    assert _decide(client, three[1], decision="confirm") == (303, "/console/")


@pytest.mark.parametrize(
    ("reason", "note", "stored"),
    [
        ("not_a_violation", "", "not a violation"),
        ("wrong_object", "", "wrong object"),
        ("duplicate", "same van as #1", "duplicate: same van as #1"),
        ("permitted", "", "permitted"),
        ("other", "street festival", "other: street festival"),
    ],
)
def test_reject_with_a_reason(
    client: TestClient, settings: ServiceSettings, three: list[int], reason: str, note: str, stored: str
) -> None:
    assert _decide(client, three[1], decision="reject", reason=reason, note=note) == (303, f"/console/cases/{three[2]}")
    assert _audit(settings, three[1]) == [("reject", stored, "test-reviewer")]


@pytest.mark.parametrize(("reason", "note"), [("", ""), ("other", ""), ("other", "   "), ("because", "")])
def test_a_rejection_needs_a_reason(
    client: TestClient, settings: ServiceSettings, three: list[int], reason: str, note: str
) -> None:
    code, page = _decide(client, three[0], decision="reject", reason=reason, note=note)
    assert code == 422
    assert "Choose a reason to reject" in page
    assert _audit(settings, three[0]) == []


def test_a_decided_case_cannot_be_decided_again(
    client: TestClient, settings: ServiceSettings, reviewer: str, three: list[int]
) -> None:
    client.post(f"/api/v1/cases/{three[0]}/review", json={"decision": "confirm"}, headers=bearer(reviewer))
    code, page = _decide(client, three[0], decision="reject", reason="duplicate")
    assert code == 409
    assert "This case is Confirmed: only a draft can be decided." in page
    assert _audit(settings, three[0]) == [("confirm", None, "test-reviewer")]


def test_undo_within_the_window(
    client: TestClient, settings: ServiceSettings, reviewer: str, clock: Clock, three: list[int]
) -> None:
    _decide(client, three[0], decision="reject", reason="permitted")
    assert f"Reject case {three[0]}. Press u to undo." in client.get(f"/console/cases/{three[1]}").text
    clock.advance(60)
    assert _undo(client) == (303, f"/console/cases/{three[0]}")
    assert client.get(f"/api/v1/cases/{three[0]}", headers=bearer(reviewer)).json()["status"] == "draft"
    assert _audit(settings, three[0]) == [("reject", "permitted", "test-reviewer"), ("reopen", "undo", "test-reviewer")]
    assert _queue_ids(client.get("/console/").text) == three
    # Nothing is left to undo, and the case can be decided again.
    assert _undo(client)[0] == 409
    assert _decide(client, three[0], decision="confirm")[0] == 303
    assert [a[0] for a in _audit(settings, three[0])] == ["reject", "reopen", "confirm"]
    api = client.get(f"/api/v1/cases/{three[0]}", headers=bearer(reviewer)).json()
    assert [r["decision"] for r in api["reviews"]] == ["reject", "reopen", "confirm"]


def test_no_undo_after_the_window(
    client: TestClient, settings: ServiceSettings, reviewer: str, clock: Clock, three: list[int]
) -> None:
    _decide(client, three[0], decision="confirm")
    clock.advance(61)
    assert "Press u to undo" not in client.get("/console/").text
    code, body = _undo(client)
    assert code == 409
    assert "can no longer be undone" in body
    assert client.get(f"/api/v1/cases/{three[0]}", headers=bearer(reviewer)).json()["status"] == "confirmed"
    assert _audit(settings, three[0]) == [("confirm", None, "test-reviewer")]


def test_undo_takes_back_only_your_own_latest_decision(
    client: TestClient,
    make_client: Callable[[ServiceSettings], TestClient],
    settings: ServiceSettings,
    keys: dict[Role, str],
    three: list[int],
) -> None:
    _decide(client, three[0], decision="confirm")
    other = make_client(settings)
    assert sign_in(other, keys[Role.ADMIN]).status_code == 303
    assert _undo(other)[0] == 409  # the admin decided nothing
    assert _undo(client)[0] == 303
    assert _decide(other, three[0], decision="reject", reason="duplicate")[0] == 303
    assert _undo(client)[0] == 409  # the case moved on since the reviewer's decision
    assert [a[0] for a in _audit(settings, three[0])] == ["confirm", "reopen", "reject"]


def test_pages_follow_the_browsers_language_or_the_switch(client: TestClient, agent: str, three: list[int]) -> None:
    post_roles(client, agent, key="v8", seed=8, type="street_vending")
    zh = client.get("/console/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
    for words in ("占道经营", "暴露垃圾", "违章停车", "违规广告"):
        assert words in zh
    case_zh = client.get(f"/console/cases/{three[0]}", headers={"Accept-Language": "zh-CN"}).text
    assert "确认 (c)" in case_zh
    assert "驳回 (r)" in case_zh
    assert "全景" in case_zh
    assert "Street vending" in client.get("/console/", headers={"Accept-Language": "en-GB,zh;q=0.5"}).text
    client.get("/console/lang/zh", params={"back": "/console/"})
    assert "违章停车" in client.get("/console/", headers={"Accept-Language": "en"}).text
    client.get("/console/lang/en")
    assert "Illegal parking" in client.get("/console/", headers={"Accept-Language": "zh"}).text


def _reopen(client: TestClient, case_id: int, reason: str) -> int:
    page = client.get(f"/console/cases/{case_id}").text
    form = {"csrf": csrf_of(page), "reason": reason}
    return client.post(f"/console/cases/{case_id}/reopen", data=form, follow_redirects=False).status_code


def test_an_admin_reopens_a_decided_case_with_a_reason(
    client: TestClient,
    make_client: Callable[[ServiceSettings], TestClient],
    settings: ServiceSettings,
    keys: dict[Role, str],
    clock: Clock,
    three: list[int],
) -> None:
    _decide(client, three[0], decision="confirm")
    clock.advance(3600)  # long past the reviewer's undo
    assert "reopen-form" not in client.get(f"/console/cases/{three[0]}").text
    assert _reopen(client, three[0], "the reviewer has no say") == 403
    admin = make_client(settings)
    assert sign_in(admin, keys[Role.ADMIN]).status_code == 303
    assert "reopen-form" in admin.get(f"/console/cases/{three[0]}").text
    assert _reopen(admin, three[0], "  ") == 422
    assert _reopen(admin, three[1], "still a draft") == 409
    assert _reopen(admin, three[0], "the owner showed a permit") == 303
    assert _audit(settings, three[0]) == [
        ("confirm", None, "test-reviewer"),
        ("reopen", "the owner showed a permit", "test-admin"),
    ]
    assert _queue_ids(client.get("/console/").text) == three


def test_an_admin_is_offered_a_reopen_only_on_a_decided_case(
    client: TestClient,
    make_client: Callable[[ServiceSettings], TestClient],
    settings: ServiceSettings,
    keys: dict[Role, str],
    three: list[int],
) -> None:
    _decide(client, three[0], decision="confirm")
    _decide(client, three[1], decision="reject", reason="duplicate")
    admin = make_client(settings)
    assert sign_in(admin, keys[Role.ADMIN]).status_code == 303

    def offered(case_id: int) -> bool:
        return "reopen-form" in admin.get(f"/console/cases/{case_id}").text

    assert [offered(c) for c in three] == [True, True, False]  # the draft gets the decision forms instead
    filed = client.post(f"/api/v1/cases/{three[0]}/actions/file", headers=bearer(keys[Role.REVIEWER]))
    assert filed.json()["status"] == "filed"
    assert not offered(three[0])  # the loop has moved it on: a reopen would only be refused
    assert _reopen(admin, three[0], "too late") == 409


def test_next_and_previous_follow_the_filtered_queue(client: TestClient, agent: str, three: list[int]) -> None:
    def links(case_id: int, **params: str) -> tuple[str | None, str | None]:
        page = client.get(f"/console/cases/{case_id}", params=params).text
        found = [re.search(rf'id="{name}" href="/console/cases/(\d+)', page) for name in ("prev", "next")]
        return (found[0] and found[0].group(1), found[1] and found[1].group(1))

    assert links(three[0]) == (None, str(three[1]))
    assert links(three[1]) == (str(three[0]), str(three[2]))
    assert links(three[1], order="newest") == (str(three[2]), str(three[0]))
    vending = post_roles(client, agent, key="v9", seed=9, type="street_vending", detected_after_s=900)
    assert links(three[2]) == (str(three[1]), str(vending))
    assert links(three[2], type="illegal_parking") == (str(three[1]), None)
    # A decision keeps the reviewer in the filtered queue: past the last parking case, back to its first one.
    page = client.get(f"/console/cases/{three[2]}", params={"type": "illegal_parking"}).text
    form = {"csrf": csrf_of(page), "decision": "confirm", "q": "type=illegal_parking"}
    decided = client.post(f"/console/cases/{three[2]}/decide", data=form, follow_redirects=False)
    assert decided.headers["location"] == f"/console/cases/{three[0]}?type=illegal_parking"


def test_a_confirmed_case_is_filed_from_its_page(client: TestClient, agent: str, reviewer: str) -> None:
    case_id = post_roles(client, agent, key="v1", seed=1)
    assert sign_in(client, reviewer).status_code == 303
    assert _decide(client, case_id, decision="confirm")[0] == 303
    page = client.get(f"/console/cases/{case_id}").text
    assert 'id="file-form"' in page
    filed = client.post(f"/console/cases/{case_id}/file", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert (filed.status_code, filed.headers["location"]) == (303, f"/console/cases/{case_id}")
    page = client.get(f"/console/cases/{case_id}").text
    assert re.search(r'id="case-status">Filed<', page)
    assert 'id="file-form"' not in page
    case = client.get(f"/api/v1/cases/{case_id}", headers=bearer(reviewer)).json()
    assert [(t["action"], t["actor"]) for t in case["transitions"]] == [("file", "test-reviewer")]
    again = client.post(f"/console/cases/{case_id}/file", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert again.status_code == 409
    assert "Only a confirmed case can be filed." in again.text
