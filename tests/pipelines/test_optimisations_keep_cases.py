"""Decoding only what is due and skipping unchanged views change the cost, not the cases (issue 12).

The real street videos of ../shared/data/videos, and a still camera made of one of their frames (where skipping
unchanged views pays), go through the pipeline with the shipped model twice: as `run` does by default (GOP
skipping decode, view-change skipping) and with both off (`pipeline.decode_every_frame: true`,
`pipeline.skip_unchanged_s: 0`). Measured on 2026-12-02: ten cases either way, the same ones.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import pytest

from detector.model import Detector
from pipelines.metrics import PipelineMetrics
from pipelines.runner import Pipeline
from streetwatch.config import StreetwatchConfig
from streetwatch.core import Violation
from streetwatch.demo import write_video

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

EVERYWHERE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
#: A carried-forward box is the one the model saw last; a model run on the firing frame boxes that frame, which
#: compression noise moves by under half a percent of the frame.
BOX_TOLERANCE = 0.01


def run(
    cameras: list[dict[str, Any]], detector: Detector, **pipeline: object
) -> tuple[list[Violation], dict[str, int]]:
    """The violations a run raises, and the frames it decoded and skipped as unchanged."""
    config = StreetwatchConfig.model_validate({"cameras": cameras, "pipeline": pipeline})
    metrics, raised = PipelineMetrics(), list[Violation]()
    Pipeline(config, detector=detector, deliver=lambda d: raised.append(d.violation), metrics=metrics).run(
        threading.Event()
    )

    def total(name: str) -> int:
        return round(sum(metrics.registry.get_sample_value(name, {"camera": c["id"]}) or 0 for c in cameras))

    counts = {
        "decoded": total("streetwatch_frames_decoded_total"),
        "unchanged": total("streetwatch_frames_unchanged_total"),
    }
    return raised, counts


def test_the_optimisations_raise_the_same_cases_as_a_full_decode_with_the_model_on_every_frame(
    tmp_path: Path, runtime_dir: Path, shared_data: Path
) -> None:
    videos = shared_data / "videos"
    ok, frame = cv2.VideoCapture(str(videos / "intersection_cctv_640x480.mp4")).read()
    assert ok
    still = write_video(tmp_path / "still.mp4", [(frame, 12.0)], fps=5)
    # Every car that stands 5 s anywhere is a case: cars waiting at lights and parked ones, about ten in all.
    zone = {"id": "road", "kind": "no_parking", "polygon": EVERYWHERE, "dwell_s": 5}
    sources = {
        "intersection": videos / "intersection_cctv_640x480.mp4",
        "overhead": videos / "overhead_road_768x432.mp4",
        "motorway": videos / "motorway_1280x720.mp4",
        "still": still,
    }
    cameras = [{"id": c, "source": str(s), "sample_every_s": 2.0, "zones": [zone]} for c, s in sources.items()]
    cameras[-1]["recorded_at"] = "2026-12-02T08:00:00+08:00"  # the real videos' headers say when; this one cannot
    detector = Detector(state_dir=runtime_dir, confidence=0.1)

    fast, fast_counts = run(cameras, detector)
    plain, plain_counts = run(cameras, detector, decode_every_frame=True, skip_unchanged_s=0)

    # Both optimisations were at work: fewer frames decoded, and the model skipped where views stood still.
    assert fast_counts["decoded"] < plain_counts["decoded"]
    assert fast_counts["unchanged"] >= 5 and plain_counts["unchanged"] == 0
    assert len(plain) >= 8 and {v.camera_id for v in plain} >= {"intersection", "motorway", "still"}
    assert len(fast) == len(plain), (fast, plain)
    for a, b in paired(fast, plain):
        # The same due frames are analysed, so a stay starts and fires at the same frame either way.
        assert (a.class_name, a.detected_s, a.first_seen_at, a.detected_at) == (
            b.class_name,
            b.detected_s,
            b.first_seen_at,
            b.detected_at,
        )
        assert a.xyxy == pytest.approx(b.xyxy, abs=BOX_TOLERANCE), (a.camera_id, a.first_seen_s)


def paired(fast: list[Violation], plain: list[Violation]) -> list[tuple[Violation, Violation]]:
    """Each case of the plain run with the fast run's case of the same camera, zone, type and start whose box is
    nearest; every case of either run is paired once, or the test fails naming the one left over."""
    left, pairs = list(fast), []
    for b in plain:
        same = [
            a
            for a in left
            if (a.camera_id, a.zone_id, a.type, a.first_seen_s) == (b.camera_id, b.zone_id, b.type, b.first_seen_s)
        ]
        assert same, f"with the optimisations on, no case like {b}"
        a = min(same, key=lambda a: max(abs(p - q) for p, q in zip(a.xyxy, b.xyxy, strict=True)))
        left.remove(a)
        pairs.append((a, b))
    assert left == [], f"with the optimisations on, cases the plain run did not raise: {left}"
    return pairs
