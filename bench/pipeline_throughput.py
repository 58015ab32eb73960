"""Throughput of the whole frame pipeline on this CPU: N file cameras through decode, model, tracker and rules.

Run: python bench/pipeline_throughput.py [--cameras 1 4 8] [--seconds 60] [--sample-every 1.0]
Each camera is a generated 640x480, 10 fps video of a real street photo (ultralytics' bus.jpg); a camera's
frames are analysed every --sample-every seconds of stream time. Prints a Markdown table: wall time, analysed
frames per second, and how many such cameras one machine keeps up with in real time.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import cv2
import psutil

from detector.model import Detector
from pipelines.metrics import PipelineMetrics
from pipelines.runner import Pipeline
from streetwatch.config import StreetwatchConfig
from streetwatch.demo import BUS_KERB_ZONE, asset_image, write_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-every", type=float, default=1.0)
    parser.add_argument("--state-dir", type=Path, default=Path("streetwatch-data"))
    args = parser.parse_args()
    detector = Detector(state_dir=args.state_dir)
    frame = cv2.resize(asset_image("bus.jpg"), (640, 480))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "cam.mp4", [(frame, args.seconds)], fps=10)
        for n in args.cameras:
            cameras = [
                {
                    "id": f"cam-{i}",
                    "source": str(video),
                    "sample_every_s": args.sample_every,
                    "zones": [{"id": "kerb", "kind": "no_parking", "polygon": BUS_KERB_ZONE, "dwell_s": 30}],
                }
                for i in range(n)
            ]
            config = StreetwatchConfig.model_validate({"cameras": cameras})
            pipeline = Pipeline(config, detector=detector, deliver=lambda _draft: None, metrics=PipelineMetrics())
            start = time.perf_counter()
            stats = pipeline.run(threading.Event())
            wall = time.perf_counter() - start
            analysed = sum(stats.frames_analysed.values())
            realtime = n * args.seconds / wall
            rows.append((n, wall, analysed / wall, realtime))
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"| cameras | wall s ({args.seconds:.0f} s of video each) | analysed frames/s | cameras in real time |")
    print("|---:|---:|---:|---:|")
    for n, wall, fps, realtime in rows:
        print(f"| {n} | {wall:.1f} | {fps:.1f} | {realtime:.0f} |")
    print(f"\nRSS at the end: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
