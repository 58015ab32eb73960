"""Memory stays bounded per camera: each camera holds at most its next due frame and its decoder, so adding
cameras adds a few MB each, however far the model falls behind the readers."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from colour_model import ColourDetector, Image
from processes import clean_env

from pipelines.metrics import PipelineMetrics
from pipelines.runner import Pipeline
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Detections, Frame
from streetwatch.demo import asset_image, encode_video, panned

MEMORY_MAIN = Path(__file__).with_name("memory_main.py")
#: Measured 5 MiB per added 1080p camera (4 → 32 cameras): its decoder, its held packets and its due frame. The
#: frames a camera may buffer when the model lags are bounded by the stuck-model test below.
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


class BlockedDetector(ColourDetector):
    """The colour-blob model stuck on its first batch until released: the readers run as far ahead as they may."""

    def __init__(self) -> None:
        super().__init__()
        self.called = threading.Event()
        self.release = threading.Event()

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        self.called.set()
        self.release.wait(timeout=120)
        return super().detect(images)


def test_readers_of_a_stuck_model_hold_one_due_frame_each_not_a_queue(tmp_path: Path) -> None:
    # 24 s at one due frame every 2 s: twelve due frames per camera that a reader could pile up.
    video = encode_video(tmp_path / "street.mp4", panned(asset_image("bus.jpg"), (640, 360), 24.0, 5), fps=5)
    cameras = 4
    zone = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 30}
    config = StreetwatchConfig.model_validate(
        {
            "cameras": [
                {"id": f"cam-{i}", "source": str(video), "sample_every_s": 2.0, "zones": [zone]} for i in range(cameras)
            ],
            "pipeline": {"skip_unchanged_s": 0},
        }
    )
    model = BlockedDetector()
    pipeline = Pipeline(config, detector=model, deliver=lambda _draft: None, metrics=PipelineMetrics())
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
    runner.start()
    try:
        assert model.called.wait(timeout=60), "the model was never called"
        held, deadline = -1, time.monotonic() + 60
        while time.monotonic() < deadline:  # until the readers stop decoding: each waits for room in its queue
            time.sleep(1.5)
            now = sum(type(o) is Frame for o in gc.get_objects())
            if now == held:
                break
            held = now
    finally:
        model.release.set()
        stop.set()
        runner.join(timeout=60)
    # Per camera: the frame in the stuck batch, the next due one in its queue, the one its reader waits to hand
    # over. Queued due frames would make it up to twelve.
    assert held <= 3 * cameras, f"{held} decoded frames held by {cameras} cameras"
