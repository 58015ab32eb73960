"""`streetwatch export-reviewed`: reviewers' decisions become a YOLO dataset of clean scene frames."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from case_helpers import Clock, bearer, case_body, jpeg, post_case
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from detector.reviewed import image_stem
from detector.taxonomy import TAXONOMY
from service.evidence import LocalEvidenceStore, sha256_hex
from service.settings import ServiceSettings
from streetwatch.cli import app


def _case(client: TestClient, agent: str, n: int, labels: list[str], clean: bytes | None) -> int:
    images: list[Any] = [("scene.jpg", jpeg(100 + n), "image/jpeg"), ("crop.jpg", jpeg(200 + n), "image/jpeg")]
    if clean is not None:
        images.insert(1, ("scene-clean.jpg", clean, "image/jpeg"))
    body = case_body(camera_id=f"cam-{n}", labels=labels, bbox=[0.1, 0.5, 0.4, 0.8])
    response = post_case(client, agent, idempotency_key=f"v{n}", body=body, images=images)
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    assert isinstance(case_id, int)
    return case_id


def _review(client: TestClient, reviewer: str, case_id: int, decision: str, reason: str | None = None) -> None:
    body = {"decision": decision, "reason": reason}
    response = client.post(f"/api/v1/cases/{case_id}/review", json=body, headers=bearer(reviewer))
    assert response.status_code == 200, response.text


def _export(settings: ServiceSettings, *args: str) -> Any:
    where = ["--state-dir", str(settings.state_dir), "--database-url", settings.resolved_database_url]
    return CliRunner().invoke(app, ["export-reviewed", *args, *where])


def test_confirmed_and_wrong_object_cases_become_labels_and_hard_negatives(
    client: TestClient, settings: ServiceSettings, agent: str, reviewer: str, clock: Clock, tmp_path: Path
) -> None:
    early = _case(client, agent, 0, ["car"], jpeg(0, 32))
    _review(client, reviewer, early, "confirm")  # decided before --since
    clock.advance(3600)
    since = clock().isoformat()
    clock.advance(60)
    confirmed_clean, rejected_clean = jpeg(1, 32), jpeg(2, 32)
    confirmed = _case(client, agent, 1, ["car"], confirmed_clean)
    rejected = _case(client, agent, 2, ["street_stall"], rejected_clean)
    duplicate = _case(client, agent, 3, ["car"], jpeg(3, 32))
    old_post = _case(client, agent, 4, ["car"], None)
    _case(client, agent, 5, ["car"], jpeg(5, 32))  # still a draft
    _review(client, reviewer, confirmed, "confirm")
    # Filed since, and on in the closed loop: still a confirmed detection to learn from.
    filed = client.post(f"/api/v1/cases/{confirmed}/actions/file", json={}, headers=bearer(reviewer))
    assert filed.json()["status"] == "filed"
    _review(client, reviewer, rejected, "reject", "wrong object: a parked van")
    _review(client, reviewer, duplicate, "reject", "duplicate")
    _review(client, reviewer, old_post, "confirm")
    lost = _case(client, agent, 6, ["car"], jpeg(6, 32))
    _review(client, reviewer, lost, "confirm")
    LocalEvidenceStore(settings.resolved_evidence_dir).delete(sha256_hex(jpeg(6, 32)))

    out = tmp_path / "export"
    result = _export(settings, "--since", since, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "exported 1 confirmed and 1 hard-negative cases" in result.output
    assert f"case {old_post} left out: no clean scene frame" in result.output
    assert f"case {lost} left out: its clean scene {sha256_hex(jpeg(6, 32))} is missing" in result.output
    assert f"case {duplicate} left out: rejected for a reason that is no hard negative" in result.output

    yes, no = image_stem(confirmed, confirmed_clean), image_stem(rejected, rejected_clean)
    images = sorted(p.name for p in (out / "images" / "train").iterdir())
    assert images == sorted([f"{yes}.jpg", f"{no}.jpg"])
    # The training image is the clean frame the pipeline posted, byte for byte.
    assert (out / "images" / "train" / f"{yes}.jpg").read_bytes() == confirmed_clean
    assert (out / "images" / "train" / f"{no}.jpg").read_bytes() == rejected_clean
    label = (out / "labels" / "train" / f"{yes}.txt").read_text()
    assert label == f"{TAXONOMY.index('car')} 0.250000 0.650000 0.300000 0.300000\n"
    assert (out / "labels" / "train" / f"{no}.txt").read_text() == ""

    manifest = json.loads((out / "reviewed.json").read_text())["images"]
    assert manifest[f"{yes}.jpg"]["labels"] == ["car"]
    assert manifest[f"{yes}.jpg"]["hard_negative"] is False
    negative = manifest[f"{no}.jpg"]
    assert negative["labels"] == ["street_stall"] and negative["hard_negative"] is True
    assert negative["box"] == [0.1, 0.5, 0.4, 0.8] and negative["reason"] == "wrong object: a parked van"
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["reviewed"] == ["reviewed.json"] and data["names"][TAXONOMY.index("car")] == "car"

    # Every rejection is a hard negative with --negative-reason ''; --until before the decisions leaves them out.
    result = _export(settings, "--since", since, "--out", str(tmp_path / "all"), "--negative-reason", "")
    assert "exported 1 confirmed and 2 hard-negative cases" in result.output, result.output
    until = (datetime.fromisoformat(since) + timedelta(seconds=30)).isoformat()
    result = _export(settings, "--since", since, "--until", until, "--out", str(tmp_path / "none"))
    assert "exported 0 confirmed and 0 hard-negative cases" in result.output, result.output
    result = _export(settings, "--since", since, "--until", since, "--out", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "--until: must be later than --since" in result.output


def test_a_bad_time_is_an_error_naming_the_option(
    settings: ServiceSettings, client: TestClient, tmp_path: Path
) -> None:
    result = _export(settings, "--since", "last tuesday", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "--since: 'last tuesday' is not an ISO 8601 time" in result.output
    result = _export(settings, "--since", "2026-01-01", "--until", "soon", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "--until: 'soon' is not an ISO 8601 time" in result.output
    assert not (tmp_path / "out").exists()
