"""Memory stays bounded per camera: each camera holds at most its next due frame and its decoder, so adding
cameras adds a few MB each, however far the model falls behind the readers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from processes import clean_env

from streetwatch.demo import asset_image, encode_video, panned

MEMORY_MAIN = Path(__file__).with_name("memory_main.py")
#: Measured 5 MiB per added 1080p camera (4 → 32 cameras); a camera that queued its due frames (6 MiB each as
#: BGR) instead of holding one would add well over this.
MIB_PER_CAMERA = 10.0


def peak_rss(tmp_path: Path, video: Path, cameras: int) -> dict[str, float]:
    zone = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 30}
    config = tmp_path / f"cameras-{cameras}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {"id": f"cam-{i}", "source": str(video), "sample_every_s": 2.0, "zones": [zone]}
                    for i in range(cameras)
                ]
            }
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(MEMORY_MAIN), str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The last line: ultralytics announces its settings file on stdout the first time.
    measured: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return measured


@pytest.mark.slow
def test_each_added_1080p_camera_costs_a_few_mib(tmp_path: Path) -> None:
    # 1080p street content, a keyframe every 2 s, 12 s long: 6 due frames per camera at one every 2 s.
    video = encode_video(tmp_path / "street-1080p.mp4", panned(asset_image("bus.jpg"), (1920, 1080), 12.0, 10), fps=10)
    few, many = peak_rss(tmp_path, video, 4), peak_rss(tmp_path, video, 20)
    assert (few["frames_analysed"], many["frames_analysed"]) == (4 * 6, 20 * 6)
    per_camera = (many["peak_rss_mib"] - few["peak_rss_mib"]) / 16
    assert per_camera <= MIB_PER_CAMERA, f"{per_camera:.1f} MiB per added 1080p camera"
