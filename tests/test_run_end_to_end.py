"""End to end: a video built from a real CCTV frame, the shipped model, a no-parking rule and the case service.

The frame is the first of ../shared/data's intersection video: a white car at the top left stands in a drawn
no-parking zone. (Issue 2 asked for ultralytics' bus.jpg here; the shipped model, trained on elevated traffic
cameras only, does not see a street-level bus: see models/README.md.)
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.cli import app
from streetwatch.demo import write_video

pytestmark = pytest.mark.slow


#: Around the white car's bottom centre (0.115, 0.246) in the first frame; no other car stands in it.
KERB_ZONE = [[0.05, 0.18], [0.30, 0.18], [0.30, 0.32], [0.05, 0.32]]


def test_long_stay_raises_one_case_and_short_stay_none(tmp_path: Path, runtime_dir: Path, shared_data: Path) -> None:
    ok, frame = cv2.VideoCapture(str(shared_data / "videos" / "intersection_cctv_640x480.mp4")).read()
    assert ok
    # 16 s parked (dwell 8 s): one case; 20 s of empty street; then 5 s parked: too short for a case.
    write_video(tmp_path / "kerb.mp4", [(frame, 16.0), (None, 20.0), (frame, 5.0)], fps=5)
    config = {
        "cameras": [
            {
                "id": "cam-kerb",
                "source": "kerb.mp4",
                "sample_every_s": 1.0,
                "recorded_at": "2026-11-30T08:00:00+08:00",
                "zones": [{"id": "kerb", "kind": "no_parking", "polygon": KERB_ZONE, "dwell_s": 8}],
            }
        ]
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    state = tmp_path / "state"
    runner = CliRunner()

    result = runner.invoke(app, ["run", str(tmp_path / "cfg.yaml"), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["cases", "--state-dir", str(state), "--json"])
    assert listed.exit_code == 0, listed.output
    cases = json.loads(listed.stdout)

    assert len(cases) == 1
    (case,) = cases
    assert case["type"] == "illegal_parking" and case["camera_id"] == "cam-kerb" and case["zone_id"] == "kerb"
    assert case["status"] == "draft" and case["evidence_count"] >= 1
    assert set(case["labels"]) <= {"car", "bus", "truck", "motorcycle"}
    # Footage time: the car stands from the clip's first second, recorded from 08:00 Shanghai time.
    assert case["first_seen_at"] == "2026-11-30T00:00:00Z" and case["detected_at"] == "2026-11-30T00:00:08Z"

    # Running the same file again finds the same violation: the idempotency key keeps it one case.
    again = runner.invoke(app, ["run", str(tmp_path / "cfg.yaml"), "--state-dir", str(state)])
    assert again.exit_code == 0, again.output
    assert len(json.loads(runner.invoke(app, ["cases", "--state-dir", str(state), "--json"]).stdout)) == 1


def test_missing_video_is_reported_by_camera(tmp_path: Path, runtime_dir: Path) -> None:
    config = {"cameras": [{"id": "cam-gone", "source": "nowhere.mp4", "zones": []}]}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "cfg.yaml"), "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 1
    assert "camera cam-gone failed" in result.output and "nowhere.mp4 does not exist" in result.output
