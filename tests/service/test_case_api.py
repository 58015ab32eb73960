"""The case API as reviewers and agents use it: create, list, fetch evidence, review, replay and merge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from case_helpers import T0, Clock, bearer, case_body, jpeg, png, post_case
from fastapi.testclient import TestClient

from service.evidence import sha256_hex
from service.schemas import Role
from service.settings import ServiceSettings


@pytest.mark.parametrize(
    ("decision", "reason", "status"),
    [
        ("confirm", None, "confirmed"),
        ("confirm", "blocking the bus lane", "confirmed"),
        ("reject", "a delivery van, loading is allowed here", "rejected"),
    ],
)
def test_create_list_fetch_evidence_and_review(
    client: TestClient, agent: str, reviewer: str, decision: str, reason: str | None, status: str
) -> None:
    images = [jpeg(1), ("close-up.png", png(2), "image/png")]
    created = post_case(client, agent, images=images)
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assert created.json() == {"id": case_id, "outcome": "created", "sightings": 1}
    case = client.get(f"/api/v1/cases/{case_id}", headers=bearer(reviewer)).json()
    assert (case["status"], case["sightings"], case["evidence_count"]) == ("draft", 1, 2)
    assert case["bbox"] == [0.10, 0.50, 0.40, 0.80]

    page = client.get("/api/v1/cases", headers=bearer(reviewer)).json()
    assert [c["id"] for c in page["items"]] == [case["id"]]
    assert page["next_cursor"] is None

    for n, (data, content_type) in enumerate([(jpeg(1), "image/jpeg"), (png(2), "image/png")]):
        got = client.get(case["evidence"][n]["url"], headers=bearer(reviewer))
        assert got.status_code == 200
        assert got.headers["content-type"] == content_type
        assert got.headers["x-content-type-options"] == "nosniff"  # never rendered as anything but the image
        assert got.content == data

    review = client.post(
        f"/api/v1/cases/{case['id']}/review", json={"decision": decision, "reason": reason}, headers=bearer(reviewer)
    )
    assert review.status_code == 200, review.text
    decided = client.get(f"/api/v1/cases/{case['id']}", headers=bearer(reviewer)).json()
    assert decided["status"] == status
    assert decided["reviewed_at"] is not None
    assert [(r["decision"], r["reason"], r["reviewer"]) for r in decided["reviews"]] == [
        (decision, reason, "test-reviewer")
    ]
    listed = client.get("/api/v1/cases", params={"status": status}, headers=bearer(reviewer)).json()["items"]
    assert [c["id"] for c in listed] == [case["id"]]
    assert client.get("/api/v1/cases", params={"status": "draft"}, headers=bearer(reviewer)).json()["items"] == []


@pytest.mark.parametrize("first", ["confirm", "reject"])
@pytest.mark.parametrize("second", ["confirm", "reject"])
def test_only_a_draft_can_be_reviewed(client: TestClient, agent: str, reviewer: str, first: str, second: str) -> None:
    case_id = post_case(client, agent).json()["id"]
    url = f"/api/v1/cases/{case_id}/review"
    assert client.post(url, json={"decision": first, "reason": "seen"}, headers=bearer(reviewer)).status_code == 200
    again = client.post(url, json={"decision": second, "reason": "seen again"}, headers=bearer(reviewer))
    assert again.status_code == 409
    assert f"case {case_id} is" in again.json()["detail"]
    reviews = client.get(f"/api/v1/cases/{case_id}", headers=bearer(reviewer)).json()["reviews"]
    assert [r["decision"] for r in reviews] == [first]


def test_same_idempotency_key_returns_the_same_case(client: TestClient, agent: str, reviewer: str) -> None:
    first = post_case(client, agent, idempotency_key="cam-curb-01/near-curb/42")
    # A retry may carry re-encoded evidence; the key alone decides.
    again = post_case(client, agent, idempotency_key="cam-curb-01/near-curb/42", images=[jpeg(9), jpeg(10)])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"id": first.json()["id"], "outcome": "replayed", "sightings": 1}
    cases = client.get("/api/v1/cases", headers=bearer(reviewer)).json()["items"]
    assert len(cases) == 1
    assert (cases[0]["sightings"], cases[0]["evidence_count"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"bbox": [0.5, 0.5, 0.9, 0.9]}, "bbox"),
        ({"camera_id": "cam-other", "confidence": 0.5}, "camera_id"),
        ({"type": "piled_litter", "zone_id": "z2"}, "zone_id, type"),
    ],
)
def test_a_key_reused_for_another_violation_is_409_and_keeps_both_apart(
    client: TestClient, agent: str, reviewer: str, change: dict[str, Any], fields: str
) -> None:
    first = post_case(client, agent, idempotency_key="k")
    other = post_case(client, agent, idempotency_key="k", body=case_body(**change))
    assert other.status_code == 409
    assert other.json()["detail"] == (
        f"Idempotency-Key 'k' was first used for another violation: {fields} differ; "
        "a retry must send the same case, a new violation needs a new key"
    )
    # Nothing of the refused post was kept, and the same violation under a new key is accepted.
    (case,) = client.get("/api/v1/cases", headers=bearer(reviewer)).json()["items"]
    assert case["id"] == first.json()["id"] and case["sightings"] == 1 and case["evidence_count"] == 1
    assert post_case(client, agent, idempotency_key="k2", body=case_body(**change)).status_code in (200, 201)


def test_footage_processed_again_replays_its_key(client: TestClient, agent: str) -> None:
    """A rerun of a recording sends the same violation under the same key with other times and a slightly
    other box (another model): the same case, not a conflict."""
    first = post_case(client, agent, idempotency_key="k")
    rerun = case_body(detected_after_s=900, bbox=[0.11, 0.50, 0.41, 0.81], confidence=0.6, labels=["bus"])
    again = post_case(client, agent, idempotency_key="k", body=rerun)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["sightings"] == 1


MERGE_TABLE: list[tuple[str, dict[str, Any], bool]] = [
    ("same box, 10 min later", {"detected_after_s": 780}, True),
    ("shifted box (IoU 0.6)", {"bbox": [0.16, 0.50, 0.46, 0.80], "detected_after_s": 780}, True),
    ("barely overlapping box (IoU 0.14)", {"bbox": [0.32, 0.50, 0.62, 0.80], "detected_after_s": 780}, False),
    ("disjoint box", {"bbox": [0.60, 0.10, 0.90, 0.40], "detected_after_s": 780}, False),
    ("same box, outside the 30 min window", {"detected_after_s": 180 + 1801}, False),
    ("same box, just inside the window", {"detected_after_s": 180 + 1799}, True),
    ("other zone", {"zone_id": "bus-stop", "detected_after_s": 780}, False),
    ("other camera", {"camera_id": "cam-curb-02", "detected_after_s": 780}, False),
    ("other type", {"type": "street_vending", "detected_after_s": 780}, False),
]


@pytest.mark.parametrize(("what", "resighting", "merges"), MERGE_TABLE, ids=[row[0] for row in MERGE_TABLE])
def test_resighting_merges_into_an_open_case(
    client: TestClient, agent: str, reviewer: str, what: str, resighting: dict[str, Any], merges: bool
) -> None:
    first = post_case(client, agent, idempotency_key="sighting-1").json()
    second = post_case(client, agent, idempotency_key="sighting-2", body=case_body(**resighting), images=[jpeg(5)])
    cases = client.get("/api/v1/cases", headers=bearer(reviewer)).json()["items"]
    if merges:
        assert second.status_code == 200
        assert second.json() == {"id": first["id"], "outcome": "merged", "sightings": 2}
        (case,) = cases
        assert (case["sightings"], case["evidence_count"]) == (2, 2)
        assert case["last_seen_at"] == case_body(**resighting)["detected_at"].replace("+00:00", "Z")
        assert case["bbox"] == case_body()["bbox"]
    else:
        assert second.status_code == 201
        assert second.json()["outcome"] == "created"
        assert len(cases) == 2


@pytest.mark.parametrize(("decision", "merges"), [("confirm", True), ("reject", False)])
def test_merge_only_into_draft_or_confirmed(
    client: TestClient, agent: str, reviewer: str, decision: str, merges: bool
) -> None:
    first = post_case(client, agent, idempotency_key="sighting-1").json()
    client.post(
        f"/api/v1/cases/{first['id']}/review", json={"decision": decision, "reason": "x"}, headers=bearer(reviewer)
    )
    second = post_case(client, agent, idempotency_key="sighting-2", body=case_body(detected_after_s=600))
    assert second.json()["outcome"] == ("merged" if merges else "created")
    assert (second.json()["id"] == first["id"]) is merges


def test_merge_threshold_and_window_are_configurable(
    make_settings: Callable[..., ServiceSettings],
    make_client: Callable[[ServiceSettings], TestClient],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
) -> None:
    settings = make_settings(merge_iou=0.9, merge_window_s=60)
    client = make_client(settings)
    agent = make_keys(settings)[Role.AGENT]
    post_case(client, agent, idempotency_key="a")
    shifted = post_case(client, agent, idempotency_key="b", body=case_body(bbox=[0.12, 0.50, 0.42, 0.80]))
    later = post_case(client, agent, idempotency_key="c", body=case_body(detected_after_s=180 + 120))
    assert (shifted.status_code, later.status_code) == (201, 201)


@pytest.mark.parametrize(
    ("keep", "kept_sightings"), [(1, [0]), (3, [0, 4, 5]), (6, [0, 1, 2, 3, 4, 5]), (10, [0, 1, 2, 3, 4, 5])]
)
def test_a_case_keeps_images_of_its_first_and_latest_sightings(
    make_settings: Callable[..., ServiceSettings],
    make_client: Callable[[ServiceSettings], TestClient],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
    keep: int,
    kept_sightings: list[int],
) -> None:
    settings = make_settings(evidence_sightings=keep)
    client = make_client(settings)
    keys = make_keys(settings)
    # A stall that stays: one sighting every 10 minutes, each with its own scene image, except that sighting 2
    # sends the first one's bytes again (one file in the store, which must outlive sighting 2's images).
    images = [jpeg(100 + i) for i in range(6)]
    images[2] = images[0]
    for i, image in enumerate(images):
        posted = post_case(
            client,
            keys[Role.AGENT],
            idempotency_key=f"s{i}",
            body=case_body(detected_after_s=180 + 600 * i),
            images=[image],
        )
        assert posted.status_code == (201 if i == 0 else 200), posted.text
    (case,) = client.get("/api/v1/cases", headers=bearer(keys[Role.REVIEWER])).json()["items"]
    detail = client.get(f"/api/v1/cases/{case['id']}", headers=bearer(keys[Role.REVIEWER])).json()
    assert detail["sightings"] == 6  # every sighting still counts
    assert [e["sha256"] for e in detail["evidence"]] == [sha256_hex(images[i]) for i in kept_sightings]
    for e in detail["evidence"]:
        assert client.get(e["url"], headers=bearer(keys[Role.REVIEWER])).content == images[kept_sightings[e["index"]]]
    # The store keeps exactly the files some case still refers to.
    stored = {p.name for p in settings.resolved_evidence_dir.rglob("*") if p.is_file()}
    assert stored == {sha256_hex(images[i]) for i in kept_sightings}


def test_replay_of_a_merged_post_names_the_case_it_merged_into(client: TestClient, agent: str) -> None:
    first = post_case(client, agent, idempotency_key="a")
    merged = post_case(client, agent, idempotency_key="b", body=case_body(detected_after_s=600))
    replay = post_case(client, agent, idempotency_key="b", body=case_body(detected_after_s=600))
    assert (merged.status_code, replay.status_code) == (200, 200)
    assert replay.json() == {"id": first.json()["id"], "outcome": "replayed", "sightings": 2}


def test_list_filters_and_cursor_pages_newest_first(
    client: TestClient, agent: str, reviewer: str, clock: Clock
) -> None:
    clock.advance(5 * 3600)  # the cases below are detected over four hours; none is in the service's future
    rows = [
        ("cam-a", "illegal_parking", 0),
        ("cam-a", "piled_litter", 3600),
        ("cam-b", "illegal_parking", 7200),
        ("cam-b", "unpermitted_ad", 10800),
        ("cam-c", "street_vending", 14400),
    ]
    for i, (camera, case_type, offset) in enumerate(rows):
        body = case_body(camera_id=camera, type=case_type, detected_after_s=offset)
        assert post_case(client, agent, idempotency_key=f"k{i}", body=body).status_code == 201

    def listing(**params: Any) -> list[tuple[str, str]]:
        page = client.get("/api/v1/cases", params=params, headers=bearer(reviewer))
        assert page.status_code == 200, page.text
        return [(c["camera_id"], c["type"]) for c in page.json()["items"]]

    newest_first = [(camera, case_type) for camera, case_type, _ in reversed(rows)]
    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/cases", params=params, headers=bearer(reviewer)).json()
        seen += [(c["camera_id"], c["type"]) for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (newest_first, 3)

    assert listing(type="illegal_parking") == [("cam-b", "illegal_parking"), ("cam-a", "illegal_parking")]
    assert listing(camera_id="cam-a") == [("cam-a", "piled_litter"), ("cam-a", "illegal_parking")]
    since = (T0 + timedelta(seconds=7200)).isoformat()
    until = (T0 + timedelta(seconds=14400)).isoformat()
    assert listing(since=since, until=until) == [("cam-b", "unpermitted_ad"), ("cam-b", "illegal_parking")]
    assert listing(status="confirmed") == []


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/v1/cases/999", "no case 999"),
        ("/api/v1/cases/999/evidence/0", "no case 999"),
        ("/api/v1/cases/{id}/evidence/1", "has 1 evidence images; there is no image 1"),
    ],
)
def test_unknown_case_or_image_is_404(client: TestClient, agent: str, reviewer: str, path: str, detail: str) -> None:
    case_id = post_case(client, agent).json()["id"]
    got = client.get(path.format(id=case_id), headers=bearer(reviewer))
    assert got.status_code == 404
    assert detail in got.json()["detail"]


def test_review_of_unknown_case_is_404(client: TestClient, reviewer: str) -> None:
    got = client.post("/api/v1/cases/999/review", json={"decision": "confirm"}, headers=bearer(reviewer))
    assert (got.status_code, got.json()["detail"]) == (404, "no case 999")


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/evidence/{n}"} <= set(paths)
    assert "/api/v1/cases/{case_id}/review" in paths
