"""The runner on real decoded videos with a colour-blob model: batching across cameras, evidence, failing cameras,
live frames dropped (never file frames) when the model falls behind, and per-camera state released."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from colour_model import ColourDetector, Image, scene
from pipeline_helpers import MjpegCamera
from rule_helpers import dets, shifted

from detector.model import ModelInfo
from pipelines.camera import THUMBNAIL, CameraPipeline, View, ViewChange, thumbnail
from pipelines.metrics import PipelineMetrics
from pipelines.runner import Pipeline
from pipelines.tracking import CameraTracker
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Detections, DraftCase, Frame
from streetwatch.demo import asset_image, write_video

CAR = (0.10, 0.55, 0.30, 0.80)  # bottom centre (0.2, 0.8): inside the lower half
ZONE = {"id": "kerb", "kind": "no_parking", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "dwell_s": 10}


def camera(cam_id: str, source: str | int, every_s: float = 1.0) -> dict[str, object]:
    return {"id": cam_id, "source": source, "sample_every_s": every_s, "zones": [ZONE]}


def config(*cameras: dict[str, object], skip_unchanged_s: float = 0.0) -> StreetwatchConfig:
    """The cameras' config; by default every due frame goes through the model (most tests here are about that)."""
    pipeline = {"skip_unchanged_s": skip_unchanged_s}
    return StreetwatchConfig.model_validate({"cameras": list(cameras), "pipeline": pipeline})


def parked(
    tmp_path: Path, name: str, seconds: float, *, then_empty_s: float = 0.0, size: tuple[int, int] = (320, 240)
) -> str:
    segments: list[tuple[Image | None, float]] = [(scene(("car", CAR), size=size), seconds)]
    if then_empty_s:
        segments.append((scene(size=size), then_empty_s))
    return str(write_video(tmp_path / name, segments, fps=5))


def sample(metrics: PipelineMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_cameras_share_batches_and_a_finished_camera_is_released(tmp_path: Path, runtime_dir: Path) -> None:
    short = parked(tmp_path, "short.mp4", 4)
    long = parked(tmp_path, "long.mp4", 20, then_empty_s=10)
    small = parked(tmp_path, "small.mp4", 4, size=(160, 120))
    detector, metrics, drafts = ColourDetector(), PipelineMetrics(), list[DraftCase]()
    refs: dict[str, weakref.ref[CameraPipeline]] = {}
    seen_after_end: list[bool] = []

    def on_frame(frame: Frame) -> None:
        refs.setdefault(frame.camera_id, weakref.ref(pipeline.cameras[frame.camera_id]))
        if frame.camera_id == "cam-long" and frame.timestamp_s >= 25:
            gc.collect()
            seen_after_end.append("cam-short" in pipeline.cameras or refs["cam-short"]() is not None)

    pipeline = Pipeline(
        config(camera("cam-short", short), camera("cam-long", long), camera("cam-small", small)),
        detector=detector,
        deliver=drafts.append,
        metrics=metrics,
        on_frame=on_frame,
    )
    stats = pipeline.run(threading.Event())

    assert stats.frames_analysed == {"cam-short": 4, "cam-long": 30, "cam-small": 4}
    assert stats.cases_raised == {"cam-short": 0, "cam-long": 1, "cam-small": 0}
    # Due frames of the same size go through the model together; another size goes in a call of its own.
    assert [(240, 320, 3)] * 2 in detector.batches, detector.batches
    assert all(len(set(shapes)) == 1 for shapes in detector.batches), detector.batches
    # The short camera's tracker and rule state were gone while the long one still ran, and nothing is kept after.
    assert seen_after_end and not any(seen_after_end)
    gc.collect()
    assert pipeline.cameras == {} and refs["cam-long"]() is None
    # 30 s at 5 fps is 150 frames; the frames after the last due one of each GOP (12 frames, OpenCV's writer)
    # are never decoded.
    assert 100 < sample(metrics, "streetwatch_frames_decoded_total", camera="cam-long") < 150
    assert sample(metrics, "streetwatch_frames_analysed_total", camera="cam-long") == 30
    assert sample(metrics, "streetwatch_cases_raised_total", camera="cam-long", type="illegal_parking") == 1
    assert sample(metrics, "streetwatch_batch_size_count") == len(detector.batches)

    (case,) = drafts
    assert case.violation.first_seen_s == 0.0 and case.violation.detected_s == pytest.approx(10.0)
    assert [e.name for e in case.evidence] == ["scene.jpg", "scene-clean.jpg", "crop.jpg", "first-seen.jpg"]
    decoded = [cv2.imdecode(np.frombuffer(e.data, np.uint8), cv2.IMREAD_COLOR) for e in case.evidence]
    scene, clean, crop, first = (image for image in decoded if image is not None)
    assert scene.shape == clean.shape == first.shape == (240, 320, 3)
    assert crop.shape[0] < 240 and crop.shape[1] < 320  # the crop is the car with some context
    # The clean scene is the same frame without the box and zone drawn on it (JPEG noise aside).
    drawn = np.abs(scene.astype(int) - clean.astype(int)).max(axis=2) > 120
    assert 100 < drawn.sum() < 0.2 * drawn.size


def test_a_failing_camera_does_not_stop_the_others(tmp_path: Path, runtime_dir: Path) -> None:
    drafts: list[DraftCase] = []
    cfg = config(camera("cam-gone", str(tmp_path / "gone.mp4")), camera("cam-ok", parked(tmp_path, "ok.mp4", 15)))
    stats = Pipeline(cfg, detector=ColourDetector(), deliver=drafts.append, metrics=PipelineMetrics()).run(
        threading.Event()
    )
    assert "does not exist" in stats.failed_cameras["cam-gone"]
    assert [d.violation.camera_id for d in drafts] == ["cam-ok"]


class SlowModel:
    """The colour-blob model taking `seconds` per batch: a model that cannot keep up with the cameras."""

    def __init__(self, seconds: float) -> None:
        self._inner = ColourDetector()
        self.info: ModelInfo = self._inner.info
        self.seconds = seconds

    def detect(self, images: Sequence[Image]) -> list[Detections]:
        time.sleep(self.seconds)
        return self._inner.detect(images)


def test_a_slow_model_drops_old_live_frames_but_never_file_frames(tmp_path: Path, runtime_dir: Path) -> None:
    live = MjpegCamera(scene(("car", CAR)), fps=20)
    metrics, stop = PipelineMetrics(), threading.Event()
    file_frames: list[float] = []
    live_frames: list[float] = []

    def on_frame(frame: Frame) -> None:
        (file_frames if frame.camera_id == "cam-file" else live_frames).append(frame.timestamp_s)
        if len(file_frames) == 15 and len(live_frames) >= 10:
            stop.set()

    cfg = config(camera("cam-file", parked(tmp_path, "f.mp4", 3), 0.2), camera("cam-live", live.url, 0.05))
    try:
        Pipeline(cfg, detector=SlowModel(0.2), deliver=lambda d: None, metrics=metrics, on_frame=on_frame).run(stop)
    finally:
        live.close()
    assert file_frames == pytest.approx([0.2 * i for i in range(15)])  # every due frame of the file, in order
    assert sample(metrics, "streetwatch_frames_dropped_total", camera="cam-live") > 0
    assert sample(metrics, "streetwatch_frames_dropped_total", camera="cam-file") == 0
    # The model saw the live camera's latest frames: about one per batch (0.2 s), not every 0.05 s.
    gaps = np.diff(live_frames[2:])
    assert float(np.median(gaps)) >= 0.15, live_frames


def run_one(video: str, *, skip_unchanged_s: float) -> tuple[ColourDetector, PipelineMetrics, list[DraftCase]]:
    detector, metrics, drafts = ColourDetector(), PipelineMetrics(), list[DraftCase]()
    cfg = config(camera("cam", video), skip_unchanged_s=skip_unchanged_s)
    Pipeline(cfg, detector=detector, deliver=drafts.append, metrics=metrics).run(threading.Event())
    return detector, metrics, drafts


def test_an_unchanged_view_skips_the_model_and_a_stay_keeps_its_dwell_clock(tmp_path: Path, runtime_dir: Path) -> None:
    video = parked(tmp_path, "still.mp4", 30)  # one parked car, nothing else moving, for 30 s
    every, _, every_drafts = run_one(video, skip_unchanged_s=0)
    skipping, metrics, drafts = run_one(video, skip_unchanged_s=5)

    assert len(every.batches) == 30
    # The model runs when the bound is passed (0, 6, 12, 18, 24 s); the frames between carry its tracks forward.
    assert len(skipping.batches) == 5
    assert sample(metrics, "streetwatch_frames_unchanged_total", camera="cam") == 25
    assert sample(metrics, "streetwatch_frames_analysed_total", camera="cam") == 30
    # The same case at the same moment: the stay kept its dwell clock through the skipped frames.
    (case,) = drafts
    (reference,) = every_drafts
    assert (case.violation.first_seen_s, case.violation.detected_s) == (0.0, 10.0)
    assert case.violation.key == reference.violation.key and case.violation.xyxy == reference.violation.xyxy


def test_an_object_arriving_in_an_unchanged_view_is_seen_at_once(tmp_path: Path, runtime_dir: Path) -> None:
    empty_then_parked = [(scene(), 12.0), (scene(("car", CAR)), 18.0)]
    video = str(write_video(tmp_path / "arrives.mp4", empty_then_parked, fps=5))
    # A bound far longer than the clip: only the change of view makes the model look again.
    detector, _, drafts = run_one(video, skip_unchanged_s=3600)

    # The first frame; the first one after the car arrived; the next, where the tracker confirms its track.
    assert len(detector.batches) == 3
    # The same case as with the model on every frame: tracked from 13 s (its second sighting), raised at 23 s.
    _, _, reference = run_one(video, skip_unchanged_s=0)
    assert [d.violation.key for d in drafts] == [d.violation.key for d in reference]
    assert [(d.violation.first_seen_s, d.violation.detected_s) for d in drafts] == [(13.0, 23.0)]


def test_a_1080p_view_is_compared_as_finely_as_a_plain_area_average_and_a_far_car_changes_it() -> None:
    frame = np.ascontiguousarray(cv2.resize(asset_image("bus.jpg"), (1920, 1080)))
    plain = cv2.resize(frame, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.int16)
    assert np.abs(thumbnail(frame).astype(np.int16) - plain).mean() < 2.0
    view = ViewChange(max_skip_s=60)
    assert view.compare(frame, 0.0) is View.FIRST
    assert view.compare(frame.copy(), 2.0) is View.UNCHANGED
    arrived = frame.copy()
    arrived[600:640, 900:964] = (40, 40, 200)  # a car a thirtieth of the frame wide
    assert view.compare(arrived, 4.0) is View.CHANGED


def test_the_tracker_forgets_objects_that_went_away(runtime_dir: Path) -> None:
    tracker = CameraTracker(sample_every_s=2.0, lost_track_s=20.0)
    cars = dets(*((-1, "car", shifted(CAR, 0.2 * i)) for i in range(4)))
    for _ in range(5):
        assert len(tracker.update(cars, (320, 240))) == 4
    assert tracker.tracks == 4
    empty = dets()
    for _ in range(9):  # 18 s unseen: still looked for
        tracker.update(empty, (320, 240))
    assert tracker.tracks == 4
    for _ in range(3):  # past lost_track_s
        tracker.update(empty, (320, 240))
    assert tracker.tracks == 0
