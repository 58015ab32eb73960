"""Bad input gets a 4xx whose JSON body names the problem, and leaves nothing behind."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from case_helpers import bearer, case_body, jpeg, multipart, png, post_case
from fastapi.testclient import TestClient

from service.schemas import Role
from service.settings import ServiceSettings

EVIDENCE_LIMIT = 4096
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"

# (what, request, status, the problem named in `detail`)
BAD_POSTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed JSON", {"body": '{"camera_id": "cam-1",'}, 422, "case: invalid JSON"),
    ("case is not an object", {"body": "[1, 2]"}, 422, "case: Input should be an object"),
    ("unknown type", {"body": case_body(type="jaywalking")}, 422, "case.type: Input should be"),
    ("bbox beyond 1", {"body": case_body(bbox=[0.1, 0.5, 1.4, 0.8])}, 422, "case.bbox[2]: Input should be less"),
    ("bbox below 0", {"body": case_body(bbox=[-0.1, 0.5, 0.4, 0.8])}, 422, "case.bbox[0]: Input should be greater"),
    ("bbox upside down", {"body": case_body(bbox=[0.4, 0.5, 0.1, 0.8])}, 422, "case.bbox: Value error, bbox must"),
    ("bbox of three numbers", {"body": case_body(bbox=[0.1, 0.5, 0.4])}, 422, "case.bbox[3]: Field required"),
    ("no camera", {"body": case_body(camera_id=None)}, 422, "case.camera_id: Input should be a valid string"),
    ("unknown field", {"body": case_body(colour="red")}, 422, "case.colour: Extra inputs are not permitted"),
    ("time without zone", {"body": case_body(detected_at="2025-05-01T10:03:00")}, 422, "case.detected_at"),
    ("confidence above 1", {"body": case_body(confidence=1.5)}, 422, "case.confidence"),
    ("bbox as strings", {"body": case_body(bbox=["0.1", "0.5", "0.4", "0.8"])}, 422, "case.bbox[0]: Input should be a"),
    ("confidence true", {"body": case_body(confidence=True)}, 422, "case.confidence: Input should be a valid number"),
    (
        "detected before first seen",
        {"body": case_body(first_seen_at="2025-05-01T11:00:00+00:00")},
        422,
        "case.detected_at: Value error, is before first_seen_at",
    ),
    (
        "detected in 2100",
        {"body": case_body(detected_at="2100-01-01T00:00:00Z")},
        422,
        "case.detected_at: is in the future",
    ),
    (
        "detected at the end of time",
        {"body": case_body(detected_at="9999-12-31T23:59:00Z")},
        422,
        "case.detected_at: Value error, must lie between 2000-01-01 and 9000-01-01",
    ),
    (
        "first seen in 1970",
        {"body": case_body(first_seen_at="1970-01-01T00:00:00Z")},
        422,
        "case.first_seen_at: Value error, must lie between",
    ),
    (
        "NUL in camera_id",
        {"body": case_body(camera_id="cam\u0000x")},
        422,
        "case.camera_id: Value error, must not hold",
    ),
    (
        "newline in zone_id",
        {"body": case_body(zone_id="a\nb")},
        422,
        "case.zone_id: Value error, must not hold control",
    ),
    ("100,000 labels", {"body": case_body(labels=["car"] * 100_000)}, 422, "case.labels: List should have at most 32"),
    (
        "a label of 1,000 characters",
        {"body": case_body(labels=["c" * 1000])},
        422,
        "case.labels[0]: String should have",
    ),
    ("no case part", {"body": None}, 422, "case: Field required"),
    ("no evidence part", {"images": []}, 422, "evidence: Field required"),
    ("text file", {"images": [("notes.txt", b"hello", "text/plain")]}, 415, "evidence[0] (notes.txt) is not a JPEG"),
    ("HTML named .jpg", {"images": [("x.jpg", b"<html></html>", "image/jpeg")]}, 415, "evidence[0] (x.jpg) is not"),
    ("empty file", {"images": [("e.jpg", b"", "image/jpeg")]}, 415, "evidence[0] (e.jpg) is not a JPEG or PNG"),
    (
        "JPEG header then HTML",
        {"images": [("x.jpg", jpeg()[:20] + b"<html><script>alert(1)</script></html>", "image/jpeg")]},
        415,
        "evidence[0] (x.jpg) is not a JPEG or PNG image that decodes completely",
    ),
    ("GIF after a JPEG", {"images": [jpeg(), ("a.gif", GIF, "image/gif")]}, 415, "evidence[1] (a.gif) is not"),
    ("oversized image", {"images": [jpeg(size=128)]}, 413, f"larger than the {EVIDENCE_LIMIT}-byte evidence limit"),
    (
        "body over the request limit",
        {"images": [("big.jpg", b"\xff\xd8\xff\xe0" + bytes(1_100_000), "image/jpeg")]},
        413,
        "request body is larger than",
    ),
    ("too many images", {"images": [jpeg(1), jpeg(2), png(3)]}, 400, "Too many files"),
    ("no Idempotency-Key", {"idempotency_key": None}, 422, "header.idempotency-key: Field required"),
    ("empty Idempotency-Key", {"idempotency_key": ""}, 422, "header.idempotency-key: String should have at least"),
    ("Idempotency-Key too long", {"idempotency_key": "k" * 201}, 422, "header.idempotency-key: String should have"),
]


@pytest.fixture
def tight(
    make_settings: Callable[..., ServiceSettings],
    make_client: Callable[[ServiceSettings], TestClient],
    make_keys: Callable[[ServiceSettings], dict[Role, str]],
) -> tuple[TestClient, ServiceSettings, dict[Role, str]]:
    """An app that takes at most two images of 4 KiB each."""
    settings = make_settings(max_evidence_bytes=EVIDENCE_LIMIT, max_evidence_parts=2)
    client = make_client(settings)
    return client, settings, make_keys(settings)


@pytest.mark.parametrize(("what", "request_", "status", "detail"), BAD_POSTS, ids=[row[0] for row in BAD_POSTS])
def test_bad_case_post_is_named_and_leaves_nothing(
    tight: tuple[TestClient, ServiceSettings, dict[Role, str]],
    what: str,
    request_: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    client, settings, keys = tight
    sent: dict[str, Any] = {"body": case_body(), "images": [jpeg()], "idempotency_key": "violation-1"} | request_
    data, files = multipart(sent["body"] or "", sent["images"])
    headers = bearer(keys[Role.AGENT])
    if sent["idempotency_key"] is not None:
        headers["Idempotency-Key"] = sent["idempotency_key"]
    got = client.post("/api/v1/cases", data={} if sent["body"] is None else data, files=files, headers=headers)

    assert got.status_code == status, got.text
    assert detail in got.json()["detail"]
    assert client.get("/api/v1/cases", headers=bearer(keys[Role.REVIEWER])).json()["items"] == []
    evidence_dir = settings.resolved_evidence_dir
    assert not evidence_dir.exists() or not any(p.is_file() for p in evidence_dir.rglob("*"))
    # The rejected post did not use up its key: the corrected post is accepted as new.
    data, files = multipart(case_body(), [jpeg()])
    retry = client.post(
        "/api/v1/cases", data=data, files=files, headers=bearer(keys[Role.AGENT]) | {"Idempotency-Key": "violation-1"}
    )
    assert retry.status_code == 201


def test_chunked_body_over_the_limit_is_413_json(tight: tuple[TestClient, ServiceSettings, dict[Role, str]]) -> None:
    client, settings, keys = tight
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="case"\r\n\r\n'
        + json.dumps(case_body()).encode()
        + b'\r\n--xyz\r\nContent-Disposition: form-data; name="evidence"; filename="big.jpg"\r\n'
        + b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
        + bytes(settings.max_request_bytes)
        + b"\r\n--xyz--\r\n"
    )

    def chunks() -> Iterator[bytes]:
        # A generator body has no Content-Length, so only counting the bytes can stop it.
        for start in range(0, len(body), 1 << 16):
            yield body[start : start + (1 << 16)]

    headers = bearer(keys[Role.AGENT]) | {"Idempotency-Key": "k", "Content-Type": "multipart/form-data; boundary=xyz"}
    got = client.post("/api/v1/cases", content=chunks(), headers=headers)
    assert got.status_code == 413
    assert got.json()["detail"].startswith(f"request body is larger than {settings.max_request_bytes} bytes")
    assert "content-length" not in got.request.headers


def test_json_instead_of_multipart_is_named(client: TestClient, agent: str) -> None:
    got = client.post("/api/v1/cases", json=case_body(), headers=bearer(agent) | {"Idempotency-Key": "k"})
    assert got.status_code == 422
    assert {e["field"] for e in got.json()["errors"]} == {"case", "evidence"}


BAD_REVIEWS: list[tuple[str, Any, str]] = [
    ("reject without reason", {"decision": "reject"}, "reason: Value error, a reason is required to reject"),
    ("reject with a blank reason", {"decision": "reject", "reason": "  "}, "reason: Value error, a reason is"),
    ("unknown decision", {"decision": "maybe"}, "decision: Input should be 'confirm' or 'reject'"),
    ("no decision", {"reason": "looks fine"}, "decision: Field required"),
    ("unknown field", {"decision": "confirm", "note": "x"}, "note: Extra inputs are not permitted"),
    ("reason too long", {"decision": "reject", "reason": "x" * 2001}, "reason: String should have at most 2000"),
    ("malformed JSON", '{"decision": ', "body: invalid JSON"),
]


@pytest.mark.parametrize(("what", "body", "detail"), BAD_REVIEWS, ids=[row[0] for row in BAD_REVIEWS])
def test_bad_review_is_named_and_changes_nothing(
    client: TestClient, keys: dict[Role, str], what: str, body: Any, detail: str
) -> None:
    case_id = post_case(client, keys[Role.AGENT]).json()["id"]
    headers = bearer(keys[Role.REVIEWER])
    url = f"/api/v1/cases/{case_id}/review"
    if isinstance(body, str):
        got = client.post(url, content=body, headers=headers | {"Content-Type": "application/json"})
    else:
        got = client.post(url, json=body, headers=headers)
    assert got.status_code == 422
    assert detail in got.json()["detail"]
    case = client.get(f"/api/v1/cases/{case_id}", headers=headers).json()
    assert (case["status"], case["reviews"]) == ("draft", [])


def _cursor(at: str, case_id: int) -> str:
    """A cursor in this service's encoding, naming any position."""
    return base64.urlsafe_b64encode(json.dumps([at, case_id]).encode()).decode().rstrip("=")


BAD_LISTINGS: list[tuple[str, dict[str, Any], str]] = [
    ("limit 0", {"limit": 0}, "query.limit: Input should be greater than or equal to 1"),
    ("limit too big", {"limit": 501}, "query.limit: Input should be less than or equal to 500"),
    ("limit not a number", {"limit": "ten"}, "query.limit: Input should be a valid integer"),
    (
        "unknown status",
        {"status": "pending"},
        "query.status: Input should be 'draft', 'confirmed', 'rejected', 'filed',",
    ),
    ("unknown type", {"type": "graffiti"}, "query.type: Input should be"),
    ("since without zone", {"since": "2025-05-01T10:00:00"}, "query.since: Input should have timezone info"),
    ("until not a time", {"until": "yesterday"}, "query.until: Input should be a valid datetime"),
    ("forged cursor", {"cursor": "bm90LWEtY3Vyc29y"}, "query.cursor: not a cursor this service issued"),
    ("cursor past the id column", {"cursor": _cursor("2025-05-01T10:00:00+00:00", 2**63)}, "query.cursor: not a"),
    ("cursor at year 1", {"cursor": _cursor("0001-01-01T00:00:00+05:00", 1)}, "query.cursor: not a cursor"),
    ("since at year 1", {"since": "0001-01-01T00:00:00+05:00"}, "query.since: Value error, must lie between"),
    ("NUL in camera_id", {"camera_id": "cam\x00b"}, "query.camera_id: Value error, must not hold control characters"),
    ("camera_id too long", {"camera_id": "c" * 129}, "query.camera_id: String should have at most 128 characters"),
    ("until at year 9999", {"until": "9999-12-31T23:59:59-05:00"}, "query.until: Value error, must lie between"),
    ("garbage cursor", {"cursor": "%%%"}, "query.cursor: String should match pattern '^[A-Za-z0-9_-]+$'"),
    ("empty cursor", {"cursor": ""}, "query.cursor: String should have at least 1 character"),
]


@pytest.mark.parametrize(("what", "params", "detail"), BAD_LISTINGS, ids=[row[0] for row in BAD_LISTINGS])
def test_bad_listing_is_named(
    client: TestClient, reviewer: str, what: str, params: dict[str, Any], detail: str
) -> None:
    got = client.get("/api/v1/cases", params=params, headers=bearer(reviewer))
    assert got.status_code == 422
    assert detail in got.json()["detail"]


BIG = 2**63  # one past SQLite's integer column; PostgreSQL's ends at 2**31 - 1


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/cases/abc", "path.case_id"),
        ("GET", "/api/v1/cases/1/evidence/-1", "path.n"),
        ("GET", "/api/v1/cases/1/evidence/x", "path.n"),
        ("GET", f"/api/v1/cases/{BIG}", "path.case_id"),
        ("GET", f"/api/v1/cases/{2**31}", "path.case_id"),
        ("GET", "/api/v1/cases/0", "path.case_id"),
        ("GET", f"/api/v1/cases/{BIG}/evidence/0", "path.case_id"),
        ("GET", f"/api/v1/cases/1/evidence/{BIG}", "path.n"),
        ("POST", f"/api/v1/cases/{BIG}/review", "path.case_id"),
        ("DELETE", f"/api/v1/keys/{BIG}", "path.key_id"),
    ],
)
def test_bad_path_is_422_naming_it(
    client: TestClient, keys: dict[Role, str], method: str, path: str, field: str
) -> None:
    got = client.request(method, path, headers=bearer(keys[Role.ADMIN]), json={"decision": "confirm"})
    assert got.status_code == 422, got.text
    assert got.json()["detail"].startswith(f"{field}: ")


def test_a_server_error_is_json_with_a_request_id_the_log_names(
    client: TestClient, settings: ServiceSettings, agent: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The evidence store's folder is a file now (a disk mounted wrong): storing an image fails.
    evidence = settings.resolved_evidence_dir
    evidence.parent.mkdir(parents=True, exist_ok=True)
    evidence.write_bytes(b"not a folder")
    broken = TestClient(client.app, raise_server_exceptions=False)
    with broken:
        got = post_case(broken, agent)
        assert got.status_code == 500
        body = got.json()
        assert body["request_id"] == got.headers["X-Request-ID"] and body["request_id"] in body["detail"]
        assert f"request {body['request_id']} failed: POST /api/v1/cases" in caplog.text
        # The connection stays usable, and the service still answers.
        assert broken.get("/healthz").status_code == 200
    evidence.unlink()
    assert post_case(client, agent).status_code == 201  # nothing of the failed post was kept


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/api/v1/cases", "GET, POST"), ("/api/v1/keys", "GET, POST"), ("/api/v1/cases/1", "GET"), ("/healthz", "GET")],
)
def test_a_method_not_allowed_names_every_method_the_path_has(client: TestClient, path: str, allowed: str) -> None:
    got = client.options(path)
    assert got.status_code == 405
    assert got.headers["allow"] == allowed
    assert got.json()["detail"] == "Method Not Allowed"
