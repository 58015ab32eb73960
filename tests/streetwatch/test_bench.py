"""`streetwatch bench CONFIG` times the real pipeline on a config's cameras and says how many such cameras fit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streetwatch.cli import app
from streetwatch.demo import BUS_KERB_ZONE, asset_image, write_video

FIELDS = {
    "cameras",
    "wall_s",
    "cpu_s",
    "camera_s",
    "frames_decoded",
    "frames_analysed",
    "frames_unchanged",
    "frames_dropped",
    "cases_raised",
    "analysed_per_s",
    "decoded_per_s",
    "cpu_s_per_analysed_frame",
    "real_time_factor",
    "peak_rss_mib",
    "unchanged_share",
    "cores",
    "due_per_camera_s",
    "cameras_by_cpu",
    "cameras_by_rate",
    "cameras_kept_up_with",
    "failed_cameras",
}


def config_file(tmp_path: Path, video: Path, *, cameras: int = 2, **pipeline: object) -> Path:
    zone = {"id": "kerb", "kind": "no_parking", "polygon": BUS_KERB_ZONE, "dwell_s": 30}
    config: dict[str, Any] = {
        "cameras": [
            {"id": f"cam-{i}", "source": str(video), "sample_every_s": 1.0, "zones": [zone]} for i in range(cameras)
        ],
        "pipeline": pipeline,
    }
    path = tmp_path / f"bench-{len(list(tmp_path.glob('bench-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


@pytest.mark.slow
def test_bench_measures_a_still_street_and_shows_what_skipping_unchanged_views_saves(
    tmp_path: Path, runtime_dir: Path
) -> None:
    # Two cameras of a real street photo that never changes, 10 s each, one analysed frame a second.
    video = write_video(tmp_path / "still.mp4", [(asset_image("bus.jpg"), 10.0)], fps=5)

    skipping = bench(str(config_file(tmp_path, video)), "--seconds", "120")
    every = bench(str(config_file(tmp_path, video, skip_unchanged_s=0)), "--seconds", "120")

    for figures in (skipping, every):
        assert set(figures) == FIELDS
        assert figures["cameras"] == 2 and figures["failed_cameras"] == {}
        assert figures["frames_analysed"] == 20 and figures["camera_s"] == 20.0
        assert figures["frames_analysed"] <= figures["frames_decoded"] <= 100
        assert figures["analysed_per_s"] <= figures["decoded_per_s"]
        assert figures["real_time_factor"] > 0 and figures["cpu_s_per_analysed_frame"] > 0
        assert figures["peak_rss_mib"] > 100  # a loaded model alone holds more
        # K is the lower of cores / (CPU s per frame x 1 frame per camera-second) and analysed frames/s / 1.
        by_cpu = figures["cores"] / figures["cpu_s_per_analysed_frame"]
        assert abs(figures["cameras_by_cpu"] - math.floor(by_cpu)) <= 1
        assert figures["cameras_by_rate"] == math.floor(figures["analysed_per_s"])
        assert figures["cameras_kept_up_with"] == min(figures["cameras_by_cpu"], figures["cameras_by_rate"]) >= 0
    # The model looks once per camera, then the unchanged view carries its tracks (bound: 10 s) for the other 9.
    assert skipping["frames_unchanged"] == 18 and skipping["unchanged_share"] == 0.9
    assert every["frames_unchanged"] == 0 and every["unchanged_share"] == 0.0
    assert skipping["cpu_s_per_analysed_frame"] < every["cpu_s_per_analysed_frame"]


@pytest.mark.slow
def test_bench_prints_its_estimate_for_a_person_and_stops_after_its_seconds(tmp_path: Path, runtime_dir: Path) -> None:
    video = write_video(tmp_path / "long.mp4", [(asset_image("bus.jpg"), 600.0)], fps=1)

    config = config_file(tmp_path, video, cameras=1, skip_unchanged_s=0)  # the model on every frame: slow enough

    result = CliRunner().invoke(app, ["bench", str(config), "--seconds", "3"])

    assert result.exit_code == 0, result.output
    assert "this machine keeps up with about" in result.stdout
    assert "by CPU: " in result.stdout and "by measured rate: " in result.stdout
    wall = float(result.stdout.split(" s of wall time")[0].rsplit(", ", 1)[1])
    assert 3 <= wall < 60  # stopped near --seconds, long before the 10-minute file ended


def test_bench_names_the_bad_config_field_as_run_does(tmp_path: Path) -> None:
    config = {"cameras": [{"id": "cam-1", "source": "street.mp4", "sample_every_s": 0}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    result = CliRunner().invoke(app, ["bench", str(path)])

    assert result.exit_code == 2
    assert "cameras[0].sample_every_s" in result.output


@pytest.mark.slow
def test_bench_of_cameras_that_all_fail_says_so(tmp_path: Path, runtime_dir: Path) -> None:
    path = tmp_path / "gone.yaml"
    path.write_text(yaml.safe_dump({"cameras": [{"id": "cam-gone", "source": "nowhere.mp4"}]}), encoding="utf-8")

    result = CliRunner().invoke(app, ["bench", str(path), "--seconds", "30"])

    assert result.exit_code == 1
    assert "camera cam-gone failed" in result.output and "nothing was measured" in result.output
